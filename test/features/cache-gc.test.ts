import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, test } from "vitest";
import { createScratch, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

interface DuRow {
  readonly id: string;
  readonly type: string;
  readonly size: number;
  readonly shared: boolean;
  readonly description: string;
  readonly results: readonly string[];
}

async function du(scratch: Scratch, extra: readonly string[] = []): Promise<DuRow[]> {
  const run = await runKiln(scratch.root, ["du", "--format", "json", ...extra]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as DuRow[];
}

async function snapshotCount(root: string): Promise<number> {
  return (await readdir(join(root, "snapshots", "overlay", "meta")).catch(() => [])).filter((n) => n.endsWith(".json")).length;
}

function started(stderr: string): string[] {
  return progressEvents(stderr).flatMap((e) => (e.type === "vertex.started" && !e.name.startsWith("export") ? [e.name] : []));
}

describe("kiln du and kiln prune", () => {
  let scratch: Scratch;
  let context: string;
  beforeEach(async () => {
    scratch = await createScratch();
    context = await scratch.context("ctx", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "COPY a.txt /a", "RUN head -c 1048576 /dev/zero > /big", ""].join("\n"),
      "a.txt": "a\n",
    });
    const built = await runKiln(scratch.root, ["build", "--progress", "quiet", context]);
    expect(built.code, built.stderr).toBe(0);
  });
  afterEach(async () => {
    await scratch.dispose();
  });

  test("du lists every record with its type, size, last use and sharing", async () => {
    const rows = await du(scratch);
    const types = new Set(rows.map((r) => r.type));
    expect(types).toEqual(new Set(["source.docker-image", "source.local", "file", "exec"]));
    const run = rows.find((r) => r.type === "exec");
    expect(run?.size).toBeGreaterThanOrEqual(1048576);
    expect(run?.description).toContain("RUN head");
    // The COPY has a content-checksum alias: two records naming one snapshot.
    expect(rows.filter((r) => r.type === "file").every((r) => r.shared)).toBe(true);

    const table = await runKiln(scratch.root, ["du"]);
    expect(table.stdout).toMatch(/^ID +TYPE +SIZE +LAST USED +SHARED +DESCRIPTION\n/);
    expect(table.stdout).toMatch(/\bexec +1\.\d+MB +\d+ seconds? ago +no +.*RUN head/);
    expect(table.stdout).toMatch(/Total:\t\d/);
    const verbose = await runKiln(scratch.root, ["du", "--verbose", "--filter", "type=exec"]);
    expect(verbose.stdout).toContain("Description:\t[3/3] RUN head");
    expect(verbose.stdout.match(/^ID:/gm)).toHaveLength(1);
  });

  test("prune --filter removes the matching records and their snapshots, and the next build re-runs only those", async () => {
    const before = await snapshotCount(scratch.root);
    const pruned = await runKiln(scratch.root, ["prune", "--filter", "type=exec"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/Removed 1 record and 1 snapshot/);
    expect((await du(scratch)).map((r) => r.type)).not.toContain("exec");
    expect(await snapshotCount(scratch.root)).toBe(before - 1);

    const again = await runKiln(scratch.root, ["build", "--progress", "rawjson", context]);
    expect(again.code, again.stderr).toBe(0);
    expect(started(again.stderr)).toEqual([expect.stringContaining("RUN head")]);
  });

  test("prune --keep-duration keeps what was used recently; --keep-storage removes least recently used first", async () => {
    const kept = await runKiln(scratch.root, ["prune", "--keep-duration", "1h"]);
    expect(kept.stdout).toMatch(/Removed 0 records/);
    const rows = await du(scratch);
    const small = await runKiln(scratch.root, ["prune", "--all", "--keep-storage", "512kB"]);
    expect(small.code, small.stderr).toBe(0);
    const left = await du(scratch);
    expect(left.length).toBeLessThan(rows.length);
    expect(left.reduce((t, r) => t + r.size, 0)).toBeLessThanOrEqual(512 * 1024 * 2);
  });

  test("prune keeps base images unless --all, which empties the cache and deletes every snapshot", async () => {
    await runKiln(scratch.root, ["prune"]);
    expect(new Set((await du(scratch)).map((r) => r.type))).toEqual(new Set(["source.docker-image"]));
    const all = await runKiln(scratch.root, ["prune", "--all"]);
    expect(all.code, all.stderr).toBe(0);
    expect(await du(scratch)).toEqual([]);
    expect(await snapshotCount(scratch.root)).toBe(0);
  });
});
