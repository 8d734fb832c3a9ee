import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, REPO, runKiln, type Scratch } from "../harness/kiln.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

const DOCKERFILE = [
  `FROM ${registry}/busybox:latest`,
  "RUN mkdir /data && echo hello > /data/hello.txt && chown 1234:5678 /data/hello.txt && ln -s hello.txt /data/link && rm /bin/vi",
  "",
].join("\n");

describe("filesystem and layout outputs through bin/kiln", () => {
  let scratch: Scratch;
  let context: string;
  beforeAll(async () => {
    scratch = await createScratch();
    context = await scratch.context("fs", { Dockerfile: DOCKERFILE });
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("type=local,dest=DIR writes the final filesystem with owners, symlinks and deletions", async () => {
    const dest = join(scratch.dir, "local-out");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=local,dest=${dest}`, context]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(join(dest, "data/hello.txt"), "utf8")).toBe("hello\n");
    const stats = await lstat(join(dest, "data/hello.txt"));
    expect([stats.uid, stats.gid]).toEqual([1234, 5678]);
    expect(await readlink(join(dest, "data/link"))).toBe("hello.txt");
    expect(existsSync(join(dest, "bin/sh"))).toBe(true);
    expect(existsSync(join(dest, "bin/vi"))).toBe(false);
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });

  test("a bare -o DIR is a local output and replaces what an earlier export left under the same names", async () => {
    const dest = join(scratch.dir, "bare-out");
    await mkdir(join(dest, "data"), { recursive: true });
    await writeFile(join(dest, "data/stale.txt"), "stale");
    await writeFile(join(dest, "kept.txt"), "mine");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "-o", dest, context]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(join(dest, "data/hello.txt"), "utf8")).toBe("hello\n");
    expect(existsSync(join(dest, "data/stale.txt"))).toBe(false);
    expect(await readFile(join(dest, "kept.txt"), "utf8")).toBe("mine");
  });

  test("type=tar,dest=FILE writes the filesystem as a tar with numeric owners", async () => {
    const dest = join(scratch.dir, "fs.tar");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=tar,dest=${dest}`, context]);
    expect(run.code, run.stderr).toBe(0);
    const { stdout } = await execFileAsync("tar", ["--numeric-owner", "-tvf", dest], { maxBuffer: 16 << 20 });
    expect(stdout).toMatch(/-rw-r--r-- 1234\/5678\s+6 .* data\/hello\.txt/);
    expect(stdout).toMatch(/data\/link -> hello\.txt/);
    expect(stdout).not.toMatch(/bin\/vi\b/);
  });

  test("-o - writes the filesystem tar to standard output", async () => {
    const { stdout } = await execFileAsync(process.execPath, [join(REPO, "bin/kiln"), "--root", scratch.root, "build", "--progress", "quiet", "-o", "-", context], {
      encoding: "buffer",
      maxBuffer: 256 << 20,
    });
    const file = join(scratch.dir, "stdout.tar");
    await writeFile(file, stdout);
    const { stdout: listing } = await execFileAsync("tar", ["-tf", file], { maxBuffer: 16 << 20 });
    expect(listing.split("\n")).toContain("data/hello.txt");
    expect(listing.split("\n")).toContain("bin/sh");
  });

  test("type=oci,tar=false writes a layout directory that umoci unpacks", async () => {
    const dest = join(scratch.dir, "layout");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=oci,dest=${dest},tar=false`, context]);
    expect(run.code, run.stderr).toBe(0);
    const bundle = join(scratch.dir, "bundle");
    await execFileAsync("umoci", ["unpack", "--image", `${dest}:latest`, bundle]);
    expect(await readFile(join(bundle, "rootfs/data/hello.txt"), "utf8")).toBe("hello\n");
    const stats = await lstat(join(bundle, "rootfs/data/hello.txt"));
    expect(stats.uid).toBe(1234);
  });
});
