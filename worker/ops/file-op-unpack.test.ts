import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, expect, it } from "vitest";
import type { CopyAction, FileOp } from "../../solver/llb/index.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import { layerTar } from "../snapshotter/testing/layer-tar.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { createFileRunner } from "./file-op.js";
import { committedTree, FAKE_INPUT, testContext, vertexOf } from "./testing.js";
import { ArchiveEntryEscapeError } from "./unpack-archive.js";

let dir: string;
let snapshotter: Snapshotter;
let source: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-file-unpack-"));
  snapshotter = await createOverlaySnapshotter(join(dir, "snapshots"));
  const tar = await layerTar([{ name: "pkg/bin", content: "binary", mode: 0o755, uid: 1000, gid: 1000, mtime: 1_400_000_000 }]);
  const evil = await layerTar([{ name: "../../escape", content: "x" }]);
  source = await committedTree(snapshotter, (d) => {
    writeFileSync(join(d, "app.tgz"), gzipSync(tar));
    writeFileSync(join(d, "evil.tar"), evil);
    writeFileSync(join(d, "notes.tar.gz"), "not an archive at all");
  });
});

afterEach(() => {
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  rmSync(dir, { recursive: true, force: true });
});

function add(src: string, dest: string, attemptUnpack: boolean, extra: Partial<CopyAction> = {}): CopyAction {
  return {
    kind: "copy", source: 0, src, dest, owner: null, mode: null, followSymlinks: true, dirContentsOnly: true,
    createDestPath: true, allowWildcard: true, allowEmptyWildcard: true, include: [], exclude: [],
    attemptUnpack, alwaysReplaceExisting: false, ...extra,
  };
}

async function apply(...actions: CopyAction[]): Promise<string> {
  const op: FileOp = { kind: "file", inputs: [{ digest: FAKE_INPUT, output: 0 }], base: null, actions };
  const [result] = await createFileRunner({ snapshotter }, vertexOf(op)).run([{ id: source }], testContext());
  return result!.id;
}

async function inResult<T>(id: string, fn: (root: string) => T): Promise<T> {
  return withMountedSnapshot(await snapshotter.view(id), async (root) => fn(root));
}

it("a copy with attemptUnpack unpacks a tar archive found by content into the destination directory", async () => {
  const id = await apply(add("/app.tgz", "/opt/app", true), add("/notes.tar.gz", "/opt/", true));
  await inResult(id, (root) => {
    const bin = lstatSync(join(root, "opt/app/pkg/bin"));
    expect([bin.mode & 0o7777, bin.uid, bin.mtimeMs / 1000]).toEqual([0o755, 1000, 1_400_000_000]);
    expect(readFileSync(join(root, "opt/notes.tar.gz"), "utf8")).toBe("not an archive at all");
  });
});

it("a copy with attemptUnpack unpacks every wildcard match that is an archive", async () => {
  const id = await apply(add("/*.tgz", "/opt/", true));
  await inResult(id, (root) => expect(readFileSync(join(root, "opt/pkg/bin"), "utf8")).toBe("binary"));
});

it("a copy without attemptUnpack keeps an archive packed", async () => {
  const id = await apply(add("/app.tgz", "/opt/", false));
  await inResult(id, (root) => expect(lstatSync(join(root, "opt/app.tgz")).isFile()).toBe(true));
});

it("a copy with attemptUnpack and an owner gives the unpacked entries that owner", async () => {
  const id = await apply(add("/app.tgz", "/opt/", true, { owner: { user: { id: 5 }, group: { id: 6 } } }));
  await inResult(id, (root) => expect([lstatSync(join(root, "opt/pkg/bin")).uid, lstatSync(join(root, "opt/pkg/bin")).gid]).toEqual([5, 6]));
});

it("a copy with attemptUnpack fails on an archive entry that escapes, and leaves nothing mounted", async () => {
  const error = await apply(add("/evil.tar", "/opt/", true)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ArchiveEntryEscapeError);
  expect((error as Error).message).toBe(`Cannot unpack "evil.tar": entry "../../escape" is refused because its name climbs above the destination with ".."`);
});
