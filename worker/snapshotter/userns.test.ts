import { spawn } from "node:child_process";
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { diffSnapshot } from "../differ/diff.js";
import { getXattr } from "../syscalls.js";
import { applyLayer } from "./apply-layer.js";
import { withMountedSnapshot } from "./mount.js";
import { createOverlaySnapshotter } from "./overlay.js";
import { describeTree, layerTar, tempDir } from "./testing/layer-tar.js";
import { inUserNamespace } from "./user-namespace.js";

/**
 * The overlay snapshotter, applyLayer and the differ inside a user namespace, as rootless kiln
 * runs them. The outer test (as root) runs vitest on this same file as an ordinary user, inside
 * `unshare --user --map-auto --map-root-user --mount` (the user's subordinate range mapped below
 * its own root), with KILN_USERNS_INNER set; the inner describe block runs only there.
 */
const INNER = process.env["KILN_USERNS_INNER"] === "1";

if (INNER) describe("inside a user namespace", () => {
  test("inUserNamespace() sees the partial uid map and the snapshotter defaults to userxattr", async () => {
    expect(inUserNamespace()).toBe(true);
    const snapshotter = await createOverlaySnapshotter(await tempDir());
    const base = await snapshotter.commit(await snapshotter.prepare(null));
    const active = await snapshotter.prepare(base);
    expect(active.mount).toMatchObject({ kind: "overlay", userxattr: true });
    await snapshotter.abort(active);
  });

  test("applies whiteouts, user.overlay.opaque and owners, renames directories in the mount, and diffs back", async () => {
    const snapshotter = await createOverlaySnapshotter(await tempDir());
    const base = await snapshotter.prepare(null);
    await applyLayer(Readable.from([await layerTar([
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", content: "root", uid: 1000, gid: 1000 },
      { name: "old/", type: "directory" },
      { name: "old/x", content: "x" },
      { name: "doomed", content: "d" },
    ])]), base.upperdir, { layerName: "base", whiteouts: "overlay", userxattr: true });
    const baseId = await snapshotter.commit(base);
    expect((await lstat(join(base.upperdir, "etc/passwd"))).uid).toBe(1000);

    const layer = await snapshotter.prepare(baseId);
    await applyLayer(Readable.from([await layerTar([
      { name: ".wh.doomed", content: "" },
      { name: "old/", type: "directory" },
      { name: "old/.wh..wh..opq", content: "" },
      { name: "old/y", content: "y" },
    ])]), layer.upperdir, { layerName: "second", whiteouts: "overlay", userxattr: true });
    expect(getXattr(join(layer.upperdir, "old"), "user.overlay.opaque")?.toString()).toBe("y");
    const layerId = await snapshotter.commit(layer);

    const active = await snapshotter.prepare(layerId);
    await withMountedSnapshot(active.mount, async (dir) => {
      expect((await readdir(dir)).sort()).toEqual(["etc", "old"]);
      expect(await readdir(join(dir, "old"))).toEqual(["y"]);
      await mkdir(join(dir, "var/lib/dpkg/new"), { recursive: true });
      await writeFile(join(dir, "var/lib/dpkg/new/file"), "f");
      await rename(join(dir, "var/lib/dpkg/new"), join(dir, "var/lib/dpkg/renamed"));
      await rm(join(dir, "etc/passwd"));
      await rm(join(dir, "old"), { recursive: true });
      await mkdir(join(dir, "old"));
      await writeFile(join(dir, "old/z"), "z");
    });
    const topId = await snapshotter.commit(active);
    const bytes = Buffer.concat(await diffSnapshot(snapshotter, topId).toArray());
    const text = bytes.toString("latin1");
    expect(text).toContain("etc/.wh.passwd");
    expect(text).toContain("old/.wh..wh..opq");
    expect(text).toContain("var/lib/dpkg/renamed/file");

    const copy = await snapshotter.prepare(layerId);
    await applyLayer(Readable.from([bytes]), copy.upperdir, { layerName: "diff", whiteouts: "overlay", userxattr: true });
    const copyId = await snapshotter.commit(copy);
    const expected = await withMountedSnapshot(await snapshotter.view(topId), (dir) => describeTree(dir, { mtimes: true }));
    expect(await withMountedSnapshot(await snapshotter.view(copyId), (dir) => describeTree(dir, { mtimes: true }))).toEqual(expected);
    expect(expected).toContain("old/z file:594e519ae499 644 0:0 mtime=" + expected.find((l) => l.startsWith("old/z"))?.split("mtime=")[1]);
  });
});

const TEST_USER = "kiln-snapshot-test";

/** Runs a command, resolving with its exit code and combined output. */
function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** useradd/usermod/userdel, retried while another test holds the lock on /etc/passwd (test/features/rootless.test.ts). */
async function accounts(command: string, args: readonly string[]): Promise<{ code: number | null; output: string }> {
  for (let attempt = 0; ; attempt++) {
    const result = await run(command, args);
    if (result.code === 0 || !/lock/i.test(result.output) || attempt >= 20) return result;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

// Defined, not skipped, in each run: the suite refuses to start unless it is root (test/harness/system.ts).
if (!INNER) describe("in a user namespace", () => {
  test("the overlay snapshotter, applyLayer and the differ pass their user-namespace tests as an ordinary user", async () => {
    // An ordinary user made by useradd gets a subordinate id range in /etc/subuid and /etc/subgid,
    // which `unshare --map-auto` maps (through the setuid newuidmap) below the user's own root.
    let created = false;
    if ((await run("id", [TEST_USER])).code !== 0) {
      const added = await accounts("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER]);
      expect(added.code, added.output).toBe(0);
      if ((await run("grep", [`^${TEST_USER}:`, "/etc/subuid"])).code !== 0) {
        await accounts("usermod", ["--add-subuids", "200000-265535", "--add-subgids", "200000-265535", TEST_USER]);
      }
      created = true;
    }
    try {
      const file = fileURLToPath(import.meta.url);
      const root = fileURLToPath(new URL("../..", import.meta.url));
      const result = await run(
        "runuser",
        ["-u", TEST_USER, "--", "unshare", "--user", "--map-auto", "--map-root-user", "--mount", "--", process.execPath, join(root, "node_modules/vitest/vitest.mjs"), "run", "--configLoader", "runner", file],
        { cwd: root, env: { ...process.env, KILN_USERNS_INNER: "1", HOME: "/tmp" } },
      );
      expect(result.output).toMatch(/Tests\s+.*2 passed/);
      expect(result.code, result.output).toBe(0);
    } finally {
      if (created) await accounts("userdel", [TEST_USER]);
    }
  });
});
