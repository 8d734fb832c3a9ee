import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createNativeSnapshotter } from "./native.js";
import { sweepSnapshots } from "./snapshot-gc.js";
import { SnapshotStore } from "./snapshot-store.js";
import type { SnapshotId } from "./types.js";

const HOUR = 3600_000;

describe("sweepSnapshots", () => {
  let dir: string;
  let store: SnapshotStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-snapshot-gc-"));
    store = await SnapshotStore.open(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A committed snapshot written straight to the store: nothing leases it. */
  const commit = async (parent: SnapshotId | null, created: number): Promise<SnapshotId> => {
    const id = store.newId();
    await mkdir(store.fsDir(id), { recursive: true });
    await writeFile(join(store.fsDir(id), "file"), id);
    await store.write({ id, parent, kind: "committed", created });
    return id;
  };
  const ids = async (): Promise<string[]> => (await readdir(join(dir, "meta"))).map((n) => n.slice(0, -".json".length)).sort();

  test("sweeps an unreferenced snapshot older than the grace period and keeps a young one", async () => {
    const now = Date.now();
    const old = await commit(null, now - 2 * HOUR);
    const young = await commit(null, now - 60_000);
    const swept = await sweepSnapshots(store, { roots: [], graceMs: HOUR, now });
    expect(swept.map((s) => s.id)).toEqual([old]);
    expect(await ids()).toEqual([young]);
    expect(await readdir(join(dir, "snapshots"))).toEqual([young]);
  });

  test("keeps a root and all its ancestors, and sweeps an old chain nothing names, children first", async () => {
    const now = Date.now();
    const base = await commit(null, now - 3 * HOUR);
    const middle = await commit(base, now - 3 * HOUR);
    const top = await commit(middle, now - 3 * HOUR);
    const other = await commit(base, now - 3 * HOUR);
    const otherChild = await commit(other, now - 3 * HOUR);
    const swept = await sweepSnapshots(store, { roots: [top], graceMs: HOUR, now });
    expect(swept.map((s) => s.id)).toEqual([otherChild, other]);
    expect(await ids()).toEqual([base, middle, top].sort());
  });

  test("a young snapshot a deleted record released is swept at once; its parent, named by nothing, too", async () => {
    const now = Date.now();
    const parent = await commit(null, now);
    const child = await commit(parent, now);
    const swept = await sweepSnapshots(store, { roots: [], released: [child], graceMs: HOUR, now });
    expect(swept.map((s) => s.id)).toEqual([child, parent]);
  });

  test("roots naming snapshots that do not exist are ignored", async () => {
    const now = Date.now();
    const old = await commit(null, now - 2 * HOUR);
    expect((await sweepSnapshots(store, { roots: ["0".repeat(32)], graceMs: HOUR, now })).map((s) => s.id)).toEqual([old]);
  });

  test("keeps the snapshots a live process leased and their ancestors; a dead process's lease is ignored", async () => {
    const now = Date.now();
    const snapshotter = await createNativeSnapshotter(dir);
    const base = await commit(null, now - 2 * HOUR);
    // Preparing on `base` leases it to this (live) process.
    const active = await snapshotter.prepare(base);
    const leasedTop = await snapshotter.commit(active);
    // A lease file of a process that has exited.
    const dead = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ["-e", "0"]);
      child.on("exit", () => resolve(child.pid ?? 0));
    });
    const orphan = await commit(null, now - 2 * HOUR);
    await writeFile(join(dir, "leases", `${dead}.1`), `${orphan}\n`);
    const swept = await sweepSnapshots(store, { roots: [], graceMs: HOUR, now: now + 3 * HOUR });
    expect(swept.map((s) => s.id)).toEqual([orphan]);
    expect(await ids()).toEqual([base, leasedTop].sort());
    expect(await readdir(join(dir, "leases"))).not.toContain(`${dead}.1`);
  });

  test("releaseLeases() ends this process's leases, so a long-lived process no longer pins what it used", async () => {
    const now = Date.now();
    const snapshotter = await createNativeSnapshotter(dir);
    const base = await commit(null, now - 2 * HOUR);
    const leasedTop = await snapshotter.commit(await snapshotter.prepare(base));
    expect(await sweepSnapshots(store, { roots: [], graceMs: HOUR, now: now + 3 * HOUR })).toEqual([]);
    snapshotter.releaseLeases?.();
    const swept = await sweepSnapshots(store, { roots: [], graceMs: HOUR, now: now + 3 * HOUR });
    expect(swept.map((s) => s.id)).toEqual([leasedTop, base]);
    // Leasing again after a release works as before.
    const again = await commit(null, now - 2 * HOUR);
    await snapshotter.abort(await snapshotter.prepare(again));
    expect(await sweepSnapshots(store, { roots: [], graceMs: HOUR, now: now + 3 * HOUR })).toEqual([]);
  });

  test("a dry run reports what it would sweep and removes nothing", async () => {
    const now = Date.now();
    const old = await commit(null, now - 2 * HOUR);
    expect((await sweepSnapshots(store, { roots: [], graceMs: HOUR, now, dryRun: true })).map((s) => s.id)).toEqual([old]);
    expect(await ids()).toEqual([old]);
  });
});
