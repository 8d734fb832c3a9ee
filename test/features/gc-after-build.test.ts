import { readdirSync, readFileSync, statSync } from "node:fs";
import { readdir, readFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, inject, test } from "vitest";
import { createEngine } from "../../cli/api.js";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");
const HOUR = 3600_000;

/** The pids of live processes whose command line names `root` (a detached `kiln prune --auto`). */
function processesOn(root: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(root)) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

async function until(what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

describe("the default garbage collection after builds", () => {
  let scratch: Scratch;
  let stamp: string;
  let blobDir: string;
  beforeEach(async () => {
    scratch = await createScratch();
    stamp = join(scratch.root, "cache", "gc-stamp");
    blobDir = join(scratch.root, "content", "blobs", "sha256");
  });
  afterEach(async () => {
    await until("no kiln process uses the scratch root", () => processesOn(scratch.root).length === 0);
    await scratch.dispose();
  });

  /** Builds and tags an image, removes its name and ages every blob past the blob grace period: its manifest and config are garbage. */
  async function makeGarbage(): Promise<string> {
    const context = await scratch.context("garbage", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo one > /one\n` });
    const built = await runKiln(scratch.root, ["build", "--progress", "quiet", "-t", "garbage:1", context]);
    expect(built.code, built.stderr).toBe(0);
    const manifest = built.stdout.trim().replace(/^sha256:/, "");
    expect(await readdir(blobDir)).toContain(manifest);
    expect((await runKiln(scratch.root, ["rmi", "garbage:1"])).code).toBe(0);
    const old = new Date(Date.now() - 2 * HOUR);
    for (const name of await readdir(blobDir)) await utimes(join(blobDir, name), old, old);
    return manifest;
  }

  async function ageStamp(): Promise<void> {
    const old = new Date(Date.now() - 2 * HOUR);
    await utimes(stamp, old, old);
  }

  test("a new root's first build starts the clock: nothing is collected for an hour", async () => {
    const manifest = await makeGarbage();
    const startedAt = statSync(stamp).mtimeMs;
    expect(Date.now() - startedAt).toBeLessThan(HOUR);
    const again = await runKiln(scratch.root, ["build", "--progress", "quiet", await scratch.context("next", { Dockerfile: `FROM ${registry}/busybox:latest\nLABEL next=1\n` })]);
    expect(again.code, again.stderr).toBe(0);
    await until("no kiln process uses the scratch root", () => processesOn(scratch.root).length === 0);
    expect(await readdir(blobDir)).toContain(manifest);
    expect(statSync(stamp).mtimeMs).toBe(startedAt);
    expect(await readdir(join(scratch.root, "cache"))).not.toContain("gc.log");

    const auto = await runKiln(scratch.root, ["prune", "--auto"]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stdout).toContain("Not due");
    expect(await readdir(blobDir)).toContain(manifest);
  });

  test("when due, a build hands the collection to a process of its own, which removes the garbage", async () => {
    const manifest = await makeGarbage();
    await ageStamp();
    const before = Date.now();
    const built = await runKiln(scratch.root, ["build", "--progress", "quiet", await scratch.context("next", { Dockerfile: `FROM ${registry}/busybox:latest\nLABEL next=1\n` })]);
    expect(built.code, built.stderr).toBe(0);
    // The build's own process has exited; the collection's process writes its report to gc.log.
    const log = join(scratch.root, "cache", "gc.log");
    await until("the detached collection has finished", async () => processesOn(scratch.root).length === 0 && (await readFile(log, "utf8").catch(() => "")).includes("Removed"));
    expect(await readdir(blobDir)).not.toContain(manifest);
    expect(statSync(stamp).mtimeMs).toBeGreaterThanOrEqual(before - 1000);
    // The cache records stay (the policy's limits are far): the first image rebuilds from cache.
    const rebuilt = await runKiln(scratch.root, ["build", "--progress", "plain", join(scratch.dir, "garbage")]);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stderr).toMatch(/RUN echo one > \/one\n#\d+ CACHED/);
  });

  test("prune --auto runs the collection when due and takes no other option", async () => {
    const manifest = await makeGarbage();
    await ageStamp();
    const auto = await runKiln(scratch.root, ["prune", "--auto"]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stdout).toMatch(/Removed \d+ records? and \d+ snapshots?; total reclaimed: /);
    expect(await readdir(blobDir)).not.toContain(manifest);
    expect(Date.now() - statSync(stamp).mtimeMs).toBeLessThan(HOUR);

    const mixed = await runKiln(scratch.root, ["prune", "--auto", "--all"]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain("--auto applies the default policy and takes no other option");
  });

  test("through the API, close() waits for the collection a build started", async () => {
    const manifest = await makeGarbage();
    await ageStamp();
    const engine = await createEngine({ root: scratch.root });
    try {
      const context = await scratch.context("api", { Dockerfile: `FROM ${registry}/busybox:latest\nLABEL api=1\n` });
      const result = await engine.build({ context }).result;
      expect(result.outputs).toEqual([]);
    } finally {
      await engine.close();
    }
    expect(await readdir(blobDir)).not.toContain(manifest);
    expect(Date.now() - statSync(stamp).mtimeMs).toBeLessThan(HOUR);
  });
});
