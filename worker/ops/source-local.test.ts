import { chownSync, chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SourceOp } from "../../solver/llb/index.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import { describeTree } from "../snapshotter/testing/layer-tar.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { ContentIndex, contentIndexFile } from "../checksum/index.js";
import type { CopyAction } from "../../solver/llb/index.js";
import { copySourceChecksum } from "./copy-checksum.js";
import { createLocalSourceRunner, type LocalSourceDeps } from "./source-local.js";
import { testContext, vertexOf } from "./testing.js";

let dir: string;
let context: string;
let snapshotter: Snapshotter;
let deps: LocalSourceDeps;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-local-"));
  context = join(dir, "context");
  mkdirSync(join(context, "src"), { recursive: true });
  mkdirSync(join(context, "ignored"));
  writeFileSync(join(context, "src/app.sh"), "echo app");
  chmodSync(join(context, "src/app.sh"), 0o755);
  chownSync(join(context, "src/app.sh"), 1000, 1000);
  writeFileSync(join(context, "ignored/big.bin"), "junk");
  symlinkSync("src/app.sh", join(context, "run"));
  utimesSync(join(context, "src/app.sh"), 1_500_000_000, 1_500_000_000);
  snapshotter = await createOverlaySnapshotter(join(dir, "snapshots"));
  deps = { snapshotter, session: { localDirs: { context } }, stateDir: join(dir, "state") };
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function copyAction(src: string, extra: Partial<CopyAction> = {}): CopyAction {
  return {
    kind: "copy", source: 1, src, dest: "/out/", owner: null, mode: null, followSymlinks: false, dirContentsOnly: true,
    createDestPath: true, allowWildcard: false, allowEmptyWildcard: false, include: [], exclude: [], attemptUnpack: false,
    alwaysReplaceExisting: false, ...extra,
  };
}

function local(attrs: Record<string, string> = {}, name = "context"): SourceOp {
  return { kind: "source", identifier: `local://${name}`, attrs };
}

describe("createLocalSourceRunner()", () => {
  it("copies the selected files with modes, symlinks and times, owned by 0:0", async () => {
    const op = local({ excludepatterns: JSON.stringify(["ignored"]) });
    const [result] = await createLocalSourceRunner(deps, vertexOf(op)).run([], testContext());
    await withMountedSnapshot(await snapshotter.view(result!.id), async (root) => {
      expect(readdirSync(root).sort()).toEqual(["run", "src"]);
      const st = statSync(join(root, "src/app.sh"));
      expect(st.mode & 0o7777).toBe(0o755);
      expect([st.uid, st.gid]).toEqual([0, 0]);
      expect(st.mtimeMs).toBe(1_500_000_000_000);
      expect(readFileSync(join(root, "src/app.sh"), "utf8")).toBe("echo app");
      expect(lstatSync(join(root, "run")).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(root, "run"))).toBe("src/app.sh");
    });
  });

  it("changes its cache digest when a selected file changes and not when an excluded one does", async () => {
    const runner = createLocalSourceRunner(deps, vertexOf(local({ excludepatterns: JSON.stringify(["ignored"]) })));
    const first = await runner.cacheMap(testContext());
    expect(first.deps).toEqual([]);
    writeFileSync(join(context, "ignored/big.bin"), "other junk");
    expect((await runner.cacheMap(testContext())).digest).toBe(first.digest);
    writeFileSync(join(context, "src/app.sh"), "echo changed");
    expect((await runner.cacheMap(testContext())).digest).not.toBe(first.digest);
  });

  it("ignores owners in its cache digest, as the copy resets them", async () => {
    const runner = createLocalSourceRunner(deps, vertexOf(local()));
    const first = await runner.cacheMap(testContext());
    chownSync(join(context, "src/app.sh"), 0, 0);
    expect((await runner.cacheMap(testContext())).digest).toBe(first.digest);
  });

  it("honours include patterns", async () => {
    const [result] = await createLocalSourceRunner(deps, vertexOf(local({ includepatterns: JSON.stringify(["src"]) }))).run([], testContext());
    await withMountedSnapshot(await snapshotter.view(result!.id), async (root) => {
      expect(readdirSync(root)).toEqual(["src"]);
    });
  });

  it("names the missing directory and the known ones", async () => {
    const runner = createLocalSourceRunner(deps, vertexOf(local({}, "dockerfile")));
    await expect(runner.cacheMap(testContext())).rejects.toMatchObject({ code: "KILN_LOCAL_SOURCE_INVALID", message: expect.stringContaining('"dockerfile"') });
  });

  it("refuses malformed pattern attrs", () => {
    expect(() => createLocalSourceRunner(deps, vertexOf(local({ excludepatterns: "ignored" })))).toThrow(/not JSON/);
  });

  it("makes each later snapshot incrementally, exactly as a full copy would: additions, changes, deletions, modes and symlinks", async () => {
    const incremental: LocalSourceDeps = { ...deps, racyMs: 0 };
    const runner = () => createLocalSourceRunner(incremental, vertexOf(local()));
    writeFileSync(join(context, "src/keep.txt"), "kept");
    writeFileSync(join(context, "src/gone.txt"), "gone");
    writeFileSync(join(context, "src/mode.sh"), "mode");
    const [first] = await runner().run([], testContext());
    const firstTree = await withMountedSnapshot(await snapshotter.view(first!.id), (root) => describeTree(root, { mtimes: true }));

    writeFileSync(join(context, "src/app.sh"), "echo changed, and longer");
    rmSync(join(context, "src/gone.txt"));
    writeFileSync(join(context, "src/new.txt"), "new");
    chmodSync(join(context, "src/mode.sh"), 0o700);
    rmSync(join(context, "run"));
    symlinkSync("src/keep.txt", join(context, "run"));
    const [second] = await runner().run([], testContext());
    const [full] = await createLocalSourceRunner({ snapshotter, session: deps.session }, vertexOf(local())).run([], testContext());

    const tree = async (id: string) => withMountedSnapshot(await snapshotter.view(id), (root) => describeTree(root, { mtimes: true }));
    expect(await tree(second!.id)).toEqual(await tree(full!.id));
    // The unchanged file is the previous snapshot's inode; the changed ones are new; the previous snapshot is untouched.
    const physical = async (id: string, path: string) => {
      const view = await snapshotter.view(id);
      return statSync(join(view.kind === "bind" ? view.source : "/nonexistent", path));
    };
    expect((await physical(second!.id, "src/keep.txt")).ino).toBe((await physical(first!.id, "src/keep.txt")).ino);
    expect((await physical(second!.id, "src/app.sh")).ino).not.toBe((await physical(first!.id, "src/app.sh")).ino);
    expect((await physical(second!.id, "src/mode.sh")).ino).not.toBe((await physical(first!.id, "src/mode.sh")).ino);
    expect((await physical(second!.id, "src/mode.sh")).mode & 0o7777).toBe(0o700);
    expect(await tree(first!.id)).toEqual(firstTree);
  });

  it("writes each snapshot's content index, so a COPY checksum from it equals one that reads the files", async () => {
    const incremental: LocalSourceDeps = { ...deps, racyMs: 0 };
    const checksums = async (id: string) => {
      const index = await ContentIndex.open(contentIndexFile(deps.stateDir!, id));
      return withMountedSnapshot(await snapshotter.view(id), async (root) => {
        const actions = [copyAction("."), copyAction(".", { include: ["src"] }), copyAction(".", { exclude: ["ignored"] }), copyAction("src/app.sh")];
        return {
          indexed: await Promise.all(actions.map((a) => copySourceChecksum(root, [a], new AbortController().signal, index))),
          read: await Promise.all(actions.map((a) => copySourceChecksum(root, [a], new AbortController().signal))),
          listed: index.size,
        };
      });
    };
    // Cold: each copied file is indexed with its hash from the stat cache, or else from the copy.
    const runner1 = createLocalSourceRunner(incremental, vertexOf(local()));
    await runner1.cacheMap(testContext());
    const [first] = await runner1.run([], testContext());
    const cold = await checksums(first!.id);
    expect(cold.indexed).toEqual(cold.read);
    expect(cold.listed).toBe(2);
    // One file changed just now (racy for the stat cache): hashed from the copy; the other carried over.
    writeFileSync(join(context, "src/app.sh"), "echo changed");
    const runner2 = createLocalSourceRunner(deps, vertexOf(local()));
    await runner2.cacheMap(testContext());
    const [second] = await runner2.run([], testContext());
    const changed = await checksums(second!.id);
    expect(changed.indexed).toEqual(changed.read);
    expect(changed.listed).toBe(2);
    expect(changed.read[3]).not.toBe(cold.read[3]);
  });
});

