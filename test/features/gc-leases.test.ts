import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, inject, test } from "vitest";
import { createScratch, progressEvents, REPO, runKiln, type KilnRun, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");
const NO_GRACE = { KILN_GC_GRACE_SECONDS: "0" };

/** Snapshots being written (active marks) under the state root, of either snapshotter kind. */
async function activeSnapshots(root: string): Promise<number> {
  let count = 0;
  for (const kind of ["overlay", "native"]) count += (await readdir(join(root, "snapshots", kind, "active")).catch(() => [])).length;
  return count;
}

describe("garbage collection with builds in flight", () => {
  let scratch: Scratch;
  beforeEach(async () => {
    scratch = await createScratch();
  });
  afterEach(async () => {
    await scratch.dispose();
  });

  test("prune --all in another process while a RUN sleeps keeps what the build uses; the build completes and its image runs", async () => {
    // The `src` stage finishes (and is recorded) while the last stage sleeps; its result is used
    // only afterwards, by COPY --from: only the build's lease keeps it from the prune.
    const context = await scratch.context("ctx", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS src`,
        "COPY a.txt /a.txt",
        "RUN cat /a.txt > /done",
        `FROM ${registry}/busybox:latest`,
        "RUN sleep 8",
        "COPY --from=src /done /a.txt /",
        "",
      ].join("\n"),
      "a.txt": "built under a prune\n",
    });
    let buildExited = false;
    let stderrSoFar = (): string => "";
    const build = new Promise<KilnRun>((resolve, reject) => {
      const child = spawn(process.execPath, [join(REPO, "bin", "kiln"), "--root", scratch.root, "build", "--progress", "rawjson", "-t", "gc-lease:1", context], { cwd: REPO, env: { ...process.env, ...NO_GRACE } });
      let stdout = "";
      let stderr = "";
      stderrSoFar = () => stderr.slice(0, stderr.lastIndexOf("\n") + 1);
      child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
      child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
      child.on("error", reject);
      child.on("close", (code) => {
        buildExited = true;
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
    // Wait until the src stage is done and the sleep runs.
    const srcDone = (): boolean => progressEvents(stderrSoFar()).some((e) => e.type === "vertex.completed" && e.name.includes("RUN cat /a.txt"));
    while (!buildExited && !(srcDone() && (await activeSnapshots(scratch.root)) > 0)) await sleep(100);
    const pruned = await runKiln(scratch.root, ["prune", "--all"], { env: NO_GRACE });
    const pruneDoneWhileBuilding = !buildExited;
    expect(pruned.code, pruned.stderr).toBe(0);
    const built = await build;
    expect(built.code, built.stderr).toBe(0);
    // The prune really overlapped the build (else this test proves nothing): it removed the base image's record.
    expect(pruneDoneWhileBuilding).toBe(true);
    expect(pruned.stdout).toMatch(/Removed [1-9]\d* records?/);

    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--no-cache", await scratch.context("use", { Dockerfile: "FROM gc-lease:1\nRUN cat /done /a.txt\n" })], { env: NO_GRACE });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("built under a prune");
  });

  test("an image's blobs survive prune --all; after rmi they are collected", async () => {
    const context = await scratch.context("ctx", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo one > /one\n` });
    const built = await runKiln(scratch.root, ["build", "--progress", "quiet", "-t", "gc-blobs:1", context]);
    expect(built.code, built.stderr).toBe(0);
    const blobs = async (): Promise<string[]> => readdir(join(scratch.root, "content", "blobs", "sha256"));
    const before = await blobs();

    // Blobs younger than an hour are kept whatever refers to them; age them past that.
    const old = new Date(Date.now() - 2 * 3600_000);
    const { utimes } = await import("node:fs/promises");
    for (const name of before) await utimes(join(scratch.root, "content", "blobs", "sha256", name), old, old);

    expect((await runKiln(scratch.root, ["prune", "--all"], { env: NO_GRACE })).code).toBe(0);
    const images = await runKiln(scratch.root, ["images"]);
    expect(images.stdout).toContain("gc-blobs");
    const kept = await blobs();
    expect(kept.length).toBeGreaterThan(0);

    // The image still builds on after the prune: every blob and snapshot it needs is there.
    const again = await runKiln(scratch.root, ["build", "--progress", "quiet", await scratch.context("use", { Dockerfile: "FROM gc-blobs:1\nRUN cat /one\n" })], { env: NO_GRACE });
    expect(again.code, again.stderr).toBe(0);

    const rmi = await runKiln(scratch.root, ["rmi", "gc-blobs:1"]);
    expect(rmi.code, rmi.stderr).toBe(0);
    for (const name of await blobs()) await utimes(join(scratch.root, "content", "blobs", "sha256", name), old, old);
    // du counts them as reclaimable before the prune takes them.
    const du = await runKiln(scratch.root, ["du", "--format", "json"], { env: NO_GRACE });
    const rows = JSON.parse(du.stdout) as { type: string; size: number }[];
    expect(rows.find((r) => r.type === "unreferenced.blobs")?.size).toBeGreaterThan(0);
    expect((await runKiln(scratch.root, ["prune", "--all"], { env: NO_GRACE })).code).toBe(0);
    expect(await blobs()).toEqual([]);
  });
});
