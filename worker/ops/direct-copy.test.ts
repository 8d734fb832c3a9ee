import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CopyAction, FileOp } from "../../solver/llb/index.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import { describeTree } from "../snapshotter/testing/layer-tar.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { directCopyRoots } from "./direct-copy.js";
import { createFileRunner } from "./file-op.js";
import { committedTree, FAKE_INPUT, testContext, vertexOf } from "./testing.js";

let dir: string;
let snapshotter: Snapshotter;
let base: string;
let source: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-direct-copy-"));
  snapshotter = await createOverlaySnapshotter(join(dir, "snapshots"));
  base = await committedTree(snapshotter, (d) => {
    mkdirSync(join(d, "etc"));
    writeFileSync(join(d, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  });
  source = await committedTree(snapshotter, (d) => {
    mkdirSync(join(d, "sub"));
    writeFileSync(join(d, "sub/a.txt"), "a");
    writeFileSync(join(d, "b.txt"), "b");
    chownSync(join(d, "b.txt"), 1234, 1234);
    symlinkSync("b.txt", join(d, "link"));
  });
});

afterEach(() => {
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  rmSync(dir, { recursive: true, force: true });
});

function copyOp(dest: string, extra: Partial<CopyAction> = {}): FileOp {
  const action: CopyAction = {
    kind: "copy", source: 1, src: "/", dest, owner: null, mode: null, followSymlinks: true, dirContentsOnly: true,
    createDestPath: true, allowWildcard: true, allowEmptyWildcard: true, include: [], exclude: [],
    attemptUnpack: false, alwaysReplaceExisting: false, ...extra,
  };
  return { kind: "file", base: 0, inputs: [{ digest: FAKE_INPUT, output: 0 }, { digest: FAKE_INPUT, output: 0 }], actions: [action] };
}

async function run(op: FileOp): Promise<string> {
  const [result] = await createFileRunner({ snapshotter }, vertexOf(op)).run([{ id: base }, { id: source }], testContext());
  return result!.id;
}

/** The physical path of a file in a parentless snapshot, or of the top layer of a chain. */
async function physical(id: string, path: string): Promise<string> {
  const view = await snapshotter.view(id);
  return join(view.kind === "bind" ? view.source : view.lowerdirs[0]!, path);
}

describe("a lone COPY onto fresh paths", () => {
  it("gives the same tree as the source, its files hard-linked from the source snapshot", async () => {
    const id = await run(copyOp("/app/"));
    const expected = await withMountedSnapshot(await snapshotter.view(source), (root) => describeTree(root, { mtimes: true }));
    const copied = await withMountedSnapshot(await snapshotter.view(id), (root) => describeTree(join(root, "app"), { mtimes: true }));
    expect(copied).toEqual(expected);
    expect(statSync(await physical(id, "app/sub/a.txt")).ino).toBe(statSync(await physical(source, "sub/a.txt")).ino);
    // The base is still there under the new layer.
    await withMountedSnapshot(await snapshotter.view(id), async (root) => expect(readFileSync(join(root, "etc/passwd"), "utf8")).toContain("root"));
  });

  it("copies instead of linking a file whose owner the copy changes, and leaves the source as it was", async () => {
    const id = await run(copyOp("/app/", { owner: { user: { id: 7 }, group: { id: 8 } } }));
    const copied = statSync(await physical(id, "app/b.txt"));
    expect([copied.uid, copied.gid]).toEqual([7, 8]);
    const original = statSync(await physical(source, "b.txt"));
    expect(copied.ino).not.toBe(original.ino);
    expect([original.uid, original.gid]).toEqual([1234, 1234]);
  });

  it("is not taken when the destination's top directory exists in the base, nor for owners given by name", async () => {
    const active = await snapshotter.prepare(base);
    try {
      const byId = (index: number | null) => (index === null ? null : [base, source][index] ?? null);
      expect(await directCopyRoots(snapshotter, copyOp("/etc/more/"), active, byId)).toBeUndefined();
      expect(await directCopyRoots(snapshotter, copyOp("/"), active, byId)).toBeUndefined();
      expect(await directCopyRoots(snapshotter, copyOp("/app/", { owner: { user: { name: "root" }, group: null } }), active, byId)).toBeUndefined();
      expect(await directCopyRoots(snapshotter, copyOp("/app/"), active, byId)).toBeDefined();
    } finally {
      await snapshotter.abort(active);
    }
    // The mounted path still merges into the existing directory.
    const id = await run(copyOp("/etc/more/"));
    await withMountedSnapshot(await snapshotter.view(id), async (root) => {
      expect(readFileSync(join(root, "etc/passwd"), "utf8")).toContain("root");
      expect(readFileSync(join(root, "etc/more/sub/a.txt"), "utf8")).toBe("a");
    });
  });
});
