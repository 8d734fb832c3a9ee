import { execFile } from "node:child_process";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, runKiln, type Scratch } from "../harness/kiln.js";
import { unpackOciArchive } from "../harness/oci-tools.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

const DOCKERFILE = [
  `FROM ${registry}/busybox:latest`,
  "RUN mkdir /data && echo ran > /data/ran && rm /bin/vi",
  "COPY hello.txt /data/hello.txt",
  "",
].join("\n");

/** Builds DOCKERFILE with `args` on state root `root`; returns the unpacked image's rootfs. */
async function buildAndUnpack(scratch: Scratch, name: string, root: string, args: readonly string[]): Promise<string> {
  const context = await scratch.context(name, { Dockerfile: DOCKERFILE, "hello.txt": "hello\n" });
  const out = join(scratch.dir, `${name}.tar`);
  const run = await runKiln(root, [...args, "--progress", "plain", "--output", `type=oci,dest=${out}`, context]);
  expect(run.code, run.stderr).toBe(0);
  const bundle = await unpackOciArchive(out, join(scratch.dir, `${name}-unpacked`));
  return join(bundle, "rootfs");
}

async function expectBuiltImage(rootfs: string): Promise<void> {
  expect(await readFile(join(rootfs, "data/ran"), "utf8")).toBe("ran\n");
  expect(await readFile(join(rootfs, "data/hello.txt"), "utf8")).toBe("hello\n");
  expect(await readdir(join(rootfs, "bin"))).not.toContain("vi");
  expect(await readdir(join(rootfs, "bin"))).toContain("sh");
}

describe("snapshotters", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("kiln build --snapshotter native builds with copied snapshots and the same image", async () => {
    const root = join(scratch.dir, "native-root");
    const rootfs = await buildAndUnpack(scratch, "native", root, ["build", "--snapshotter", "native"]);
    await expectBuiltImage(rootfs);
    expect(await readdir(join(root, "snapshots"))).toEqual(["native"]);
    expect((await readdir(join(root, "snapshots/native/meta"))).length).toBeGreaterThan(0);
    expect(await mountsUnder(root)).toEqual([]);
  });

  test("the global --snapshotter flag chooses too, and a bad value is a usage error", async () => {
    const root = join(scratch.dir, "global-root");
    const rootfs = await buildAndUnpack(scratch, "global", root, ["--snapshotter=native", "build"]);
    await expectBuiltImage(rootfs);
    expect(await readdir(join(root, "snapshots"))).toEqual(["native"]);
    const bad = await runKiln(root, ["build", "--snapshotter", "zfs", scratch.dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Cannot use --snapshotter "zfs": choose auto, overlay or native');
  });

  test("by default kiln falls back to native snapshots where overlay cannot mount (a state root on overlayfs)", async () => {
    const base = join(scratch.dir, "on-overlay");
    for (const d of ["lower", "upper", "work", "merged"]) await mkdir(join(base, d), { recursive: true });
    const merged = join(base, "merged");
    await execFileAsync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${join(base, "lower")},upperdir=${join(base, "upper")},workdir=${join(base, "work")}`, merged]);
    try {
      const root = join(merged, "state");
      const rootfs = await buildAndUnpack(scratch, "fallback", root, ["build"]);
      await expectBuiltImage(rootfs);
      expect((await readdir(join(root, "snapshots/native/meta"))).length).toBeGreaterThan(0);
      // The probe left nothing in the overlay snapshotter's directory.
      expect(await readdir(join(root, "snapshots/overlay"))).toEqual([]);
      expect(await mountsUnder(root)).toEqual([]);
    } finally {
      await execFileAsync("umount", [merged]);
    }
  });
});
