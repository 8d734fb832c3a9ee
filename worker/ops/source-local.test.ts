import { chownSync, chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SourceOp } from "../../solver/llb/index.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import type { Snapshotter } from "../snapshotter/types.js";
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
});
