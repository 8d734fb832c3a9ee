import { chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, existsSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { opCacheDigest, type CopyAction, type FileAction, type FileOp } from "../../solver/llb/index.js";
import { makeBusyboxRootfs } from "../executor/testing/busybox-rootfs.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { createFileRunner } from "./file-op.js";
import { committedTree, FAKE_INPUT, testContext, vertexOf } from "./testing.js";

let dir: string;
let snapshotter: Snapshotter;
let base: string;
let source: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-file-op-"));
  snapshotter = await createOverlaySnapshotter(join(dir, "snapshots"));
  base = await committedTree(snapshotter, (d) => {
    makeBusyboxRootfs(d);
    mkdirSync(join(d, "existing"));
  });
  source = await committedTree(snapshotter, (d) => {
    writeFileSync(join(d, "file.txt"), "f");
    mkdirSync(join(d, "dir/sub"), { recursive: true });
    writeFileSync(join(d, "dir/a.txt"), "a");
    writeFileSync(join(d, "dir/sub/b.txt"), "b");
    chownSync(join(d, "dir/a.txt"), 1234, 1234);
    symlinkSync("file.txt", join(d, "link"));
    writeFileSync(join(d, "x1.log"), "1");
    writeFileSync(join(d, "x2.log"), "2");
  });
});

afterEach(() => {
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  rmSync(dir, { recursive: true, force: true });
});

/** A copy action with the Dockerfile COPY defaults BuildKit's frontend uses. */
function copy(src: string, dest: string, extra: Partial<CopyAction> = {}): CopyAction {
  return {
    kind: "copy", source: 1, src, dest, owner: null, mode: null, followSymlinks: true, dirContentsOnly: true,
    createDestPath: true, allowWildcard: true, allowEmptyWildcard: true, include: [], exclude: [],
    attemptUnpack: false, alwaysReplaceExisting: false, ...extra,
  };
}

async function apply(...actions: FileAction[]): Promise<string> {
  const op: FileOp = { kind: "file", inputs: [{ digest: FAKE_INPUT, output: 0 }, { digest: FAKE_INPUT, output: 1 }], base: 0, actions };
  const [result] = await createFileRunner({ snapshotter }, vertexOf(op)).run([{ id: base }, { id: source }], testContext());
  return result!.id;
}

async function inResult<T>(id: string, fn: (root: string) => T): Promise<T> {
  return withMountedSnapshot(await snapshotter.view(id), async (root) => fn(root));
}

describe("createFileRunner() copy semantics", () => {
  const cases: readonly { name: string; action: () => CopyAction; expect: (root: string) => void }[] = [
    { name: "copies a file to a new name", action: () => copy("/file.txt", "/new.txt"), expect: (r) => expect(readFileSync(join(r, "new.txt"), "utf8")).toBe("f") },
    { name: "copies a file into a directory named with a trailing slash", action: () => copy("/file.txt", "/app/"), expect: (r) => expect(readFileSync(join(r, "app/file.txt"), "utf8")).toBe("f") },
    { name: "copies a file into an existing directory", action: () => copy("/file.txt", "/existing"), expect: (r) => expect(readFileSync(join(r, "existing/file.txt"), "utf8")).toBe("f") },
    {
      name: "copies a directory's contents (COPY dir /dst/)",
      action: () => copy("/dir", "/dst/"),
      expect: (r) => {
        expect(readdirSync(join(r, "dst")).sort()).toEqual(["a.txt", "sub"]);
        expect(readFileSync(join(r, "dst/sub/b.txt"), "utf8")).toBe("b");
      },
    },
    { name: "copies a directory itself into an existing one without dirContentsOnly", action: () => copy("/dir", "/existing", { dirContentsOnly: false }), expect: (r) => expect(readFileSync(join(r, "existing/dir/a.txt"), "utf8")).toBe("a") },
    { name: "copies every wildcard match", action: () => copy("/*.log", "/logs/"), expect: (r) => expect(readdirSync(join(r, "logs")).sort()).toEqual(["x1.log", "x2.log"]) },
    { name: "keeps source owners without --chown", action: () => copy("/dir/a.txt", "/owned"), expect: (r) => expect([statSync(join(r, "owned")).uid, statSync(join(r, "owned")).gid]).toEqual([1234, 1234]) },
    {
      name: "resolves --chown by name against the destination's /etc/passwd, created parents included",
      action: () => copy("/file.txt", "/chowned/deep/", { owner: { user: { name: "builder" }, group: null } }),
      expect: (r) => {
        expect(statSync(join(r, "chowned/deep/file.txt")).uid).toBe(1000);
        expect(statSync(join(r, "chowned/deep/file.txt")).gid).toBe(1000);
        expect(statSync(join(r, "chowned")).uid).toBe(1000);
      },
    },
    { name: "gives a numeric --chown user its id as group", action: () => copy("/file.txt", "/n", { owner: { user: { id: 42 }, group: null } }), expect: (r) => expect(statSync(join(r, "n")).gid).toBe(42) },
    { name: "applies --chmod", action: () => copy("/file.txt", "/m", { mode: 0o600 }), expect: (r) => expect(statSync(join(r, "m")).mode & 0o7777).toBe(0o600) },
    { name: "follows a symlink named as the source", action: () => copy("/link", "/followed"), expect: (r) => expect(lstatSync(join(r, "followed")).isFile()).toBe(true) },
    { name: "copies a symlink as a symlink without followSymlinks", action: () => copy("/link", "/kept", { followSymlinks: false }), expect: (r) => expect(readlinkSync(join(r, "kept"))).toBe("file.txt") },
    { name: "skips excluded paths", action: () => copy("/dir", "/ex/", { exclude: ["sub"] }), expect: (r) => expect(readdirSync(join(r, "ex"))).toEqual(["a.txt"]) },
    { name: "sets the timestamp when given", action: () => copy("/file.txt", "/t", { timestamp: 1_000_000 }), expect: (r) => expect(statSync(join(r, "t")).mtimeMs).toBe(1_000_000_000) },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const id = await apply(c.action());
      await inResult(id, c.expect);
    });
  }

  it("fails naming a missing source", async () => {
    await expect(apply(copy("/nope.txt", "/x", { allowWildcard: false }))).rejects.toMatchObject({ code: "KILN_FILE_ACTION_FAILED", message: expect.stringContaining('"/nope.txt"') });
  });

  it("fails when a wildcard matches nothing and empty matches are not allowed", async () => {
    await expect(apply(copy("/*.none", "/x", { allowEmptyWildcard: false }))).rejects.toMatchObject({ code: "KILN_FILE_ACTION_FAILED" });
  });

  it("fails on an unknown --chown user name", async () => {
    await expect(apply(copy("/file.txt", "/x", { owner: { user: { name: "ghost" }, group: null } }))).rejects.toMatchObject({ code: "KILN_USER_UNKNOWN" });
  });
});

describe("createFileRunner() mkdir, mkfile, rm", () => {
  it("makes directories with parents, writes files and removes paths in order", async () => {
    const id = await apply(
      { kind: "mkdir", path: "/a/b/c", mode: 0o755, makeParents: true, owner: { user: { id: 7 }, group: { id: 8 } } },
      { kind: "mkfile", path: "/a/b/c/f", mode: 0o640, data: Buffer.from("data").toString("base64"), owner: null },
      { kind: "rm", path: "/etc/group", allowNotFound: false, allowWildcard: false },
      { kind: "rm", path: "/missing", allowNotFound: true, allowWildcard: false },
    );
    await inResult(id, (r) => {
      expect([statSync(join(r, "a")).uid, statSync(join(r, "a/b/c")).gid]).toEqual([7, 8]);
      expect(readFileSync(join(r, "a/b/c/f"), "utf8")).toBe("data");
      expect(statSync(join(r, "a/b/c/f")).mode & 0o777).toBe(0o640);
      expect(existsSync(join(r, "etc/group"))).toBe(false);
    });
  });

  it("fails removing a missing path unless allowed", async () => {
    await expect(apply({ kind: "rm", path: "/missing", allowNotFound: false, allowWildcard: false })).rejects.toMatchObject({ code: "KILN_FILE_ACTION_FAILED" });
  });

  it("runs on scratch when base is null", async () => {
    const op: FileOp = { kind: "file", inputs: [], base: null, actions: [{ kind: "mkdir", path: "/only", mode: 0o755, makeParents: false, owner: null }] };
    const [result] = await createFileRunner({ snapshotter }, vertexOf(op)).run([], testContext());
    await inResult(result!.id, (r) => expect(readdirSync(r)).toEqual(["only"]));
  });
});

describe("createFileRunner() cache map", () => {
  const op = (): FileOp => ({ kind: "file", inputs: [{ digest: FAKE_INPUT, output: 0 }, { digest: FAKE_INPUT, output: 1 }], base: 0, actions: [copy("/dir", "/dst/")] });

  it("keys the base by its cache key and a copy source by the checksum of what is copied", async () => {
    const map = await createFileRunner({ snapshotter }, vertexOf(op())).cacheMap(testContext());
    expect(map.digest).toBe(opCacheDigest(op()));
    expect(map.deps[0]).toEqual({});
    const checksum = map.deps[1]?.contentChecksum;
    expect(checksum).toBeDefined();
    const signal = new AbortController().signal;
    const sameCopiedFiles = await committedTree(snapshotter, (d) => {
      mkdirSync(join(d, "dir/sub"), { recursive: true });
      writeFileSync(join(d, "dir/a.txt"), "a");
      writeFileSync(join(d, "dir/sub/b.txt"), "b");
      chownSync(join(d, "dir/a.txt"), 1234, 1234);
      writeFileSync(join(d, "unrelated.txt"), "not copied");
    });
    const changedCopiedFile = await committedTree(snapshotter, (d) => {
      mkdirSync(join(d, "dir/sub"), { recursive: true });
      writeFileSync(join(d, "dir/a.txt"), "A");
      writeFileSync(join(d, "dir/sub/b.txt"), "b");
      chownSync(join(d, "dir/a.txt"), 1234, 1234);
    });
    const original = await checksum!({ id: source }, signal);
    expect(await checksum!({ id: sameCopiedFiles }, signal)).toBe(original);
    expect(await checksum!({ id: changedCopiedFile }, signal)).not.toBe(original);
  });
});
