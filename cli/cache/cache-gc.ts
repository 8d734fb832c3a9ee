import { statSync, writeFileSync } from "node:fs";
import { statfs, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { collectUsage, pruneCache, type CacheStore, type CacheUsage, type PrunePolicy } from "../../solver/index.js";
import { sha256 } from "../../solver/llb/index.js";
import { collectWorkerGarbage, SNAPSHOT_GRACE_MS, snapshotUsage, type Snapshotter, type Worker } from "../../worker/index.js";

/** The worker services a garbage collection reads and sweeps. */
export type GcWorker = Pick<Worker, "root" | "content" | "images" | "snapshotter">;

/**
 * Every cache record with its size (record file + its snapshots' own disk use), most recently
 * used first; then what no record, image, feature record or lease holds (reclaimable now, past
 * the grace period), as pseudo-records: one per unreferenced snapshot (type `unreferenced`) and
 * one for all unreferenced blobs (type `unreferenced.blobs`), so `kiln du` lists and totals them.
 */
export async function cacheUsage(store: CacheStore, worker: GcWorker | Snapshotter): Promise<CacheUsage[]> {
  const snapshotter = "snapshotter" in worker ? worker.snapshotter : worker;
  const usage = await collectUsage(store, { sizeOf: (ref) => snapshotUsage(snapshotter, ref.id) });
  if (!("snapshotter" in worker)) return usage;
  const roots = new Set<string>();
  for (const u of usage) for (const ref of u.record.results) roots.add(ref.id);
  const dry = await collectWorkerGarbage(worker, { cacheRoots: roots, graceMs: graceMs(), dryRun: true });
  const pseudo: CacheUsage[] = [];
  const sizes = await Promise.all(dry.snapshots.map((s) => snapshotUsage(snapshotter, s.id)));
  dry.snapshots.forEach((s, i) => {
    pseudo.push({
      key: sha256(`unreferenced-snapshot ${s.id}`),
      record: { results: [{ id: s.id }], created: s.created, lastUsed: s.created, type: "unreferenced", vertexName: `snapshot ${s.id} (no record, image or lease refers to it)` },
      size: sizes[i] ?? 0,
      shared: false,
    });
  });
  if (dry.blobs.length > 0) {
    pseudo.push({
      key: sha256(`unreferenced-blobs ${dry.blobs.map((b) => b.digest).join(" ")}`),
      record: { results: [], created: 0, lastUsed: 0, type: "unreferenced.blobs", vertexName: `${dry.blobs.length} content blob${dry.blobs.length === 1 ? "" : "s"} no image or snapshot refers to` },
      size: dry.blobBytes,
      shared: false,
    });
  }
  return [...usage, ...pseudo];
}

/** What `kiln prune` or the garbage collection did. */
export interface PruneReport {
  readonly deleted: readonly CacheUsage[];
  /** Bytes of the deleted records plus the unreferenced snapshots and blobs swept after them. */
  readonly freedBytes: number;
  /** Snapshots deleted because nothing (record, image, feature record, lease) held them any more. */
  readonly snapshots: readonly string[];
  /** Content blobs deleted because no image, snapshot or exporter record reached them. */
  readonly blobs: readonly string[];
}

/** Extra choices of a prune beyond the record policy. */
export interface PruneGcOptions {
  /**
   * Feature records (http downloads, local contexts, layer variants) not written since this time
   * are forgotten. Default: now under `policy.all`, `now - keepDuration` under `keepDuration`, else none.
   */
  readonly forgetFeaturesBefore?: number;
}

/**
 * Deletes the records `policy` chooses, then collects the worker's garbage by mark and sweep
 * (worker/garbage-collect.ts): every snapshot and blob that no remaining record, image, feature
 * record or live build's lease reaches, older than the grace period (`KILN_GC_GRACE_SECONDS`,
 * default 10 minutes for snapshots; blobs: 1 hour), is deleted.
 */
export async function pruneBuildCache(store: CacheStore, worker: GcWorker, policy: PrunePolicy, options: PruneGcOptions = {}): Promise<PruneReport> {
  const snapshotter = worker.snapshotter;
  const pruned = await pruneCache(store, policy, { sizeOf: (ref) => snapshotUsage(snapshotter, ref.id) });
  const now = policy.now ?? Date.now();
  const forgetFeaturesBefore = options.forgetFeaturesBefore ?? (policy.all === true ? now : policy.keepDuration !== undefined ? now - policy.keepDuration : undefined);
  const roots = new Set<string>();
  // Listed after the deletion: records another process wrote meanwhile are roots too.
  for await (const entry of store.list()) for (const ref of entry.record.results) roots.add(ref.id);
  const released = new Set(pruned.released.map((ref) => ref.id));
  const gc = await collectWorkerGarbage(worker, {
    cacheRoots: roots,
    released,
    graceMs: graceMs(),
    ...(forgetFeaturesBefore === undefined ? {} : { forgetFeaturesBefore }),
  });
  return {
    deleted: pruned.deleted,
    // A released snapshot's bytes are already in the deleted records' sizes.
    freedBytes: pruned.freedBytes + Math.max(0, gc.snapshotBytes - releasedBytes(pruned.deleted, released)) + gc.blobBytes,
    snapshots: gc.snapshots.map((s) => s.id),
    blobs: gc.blobs.map((b) => b.digest),
  };
}

/** The part of the deleted records' sizes that was their released snapshots (counted once). */
function releasedBytes(deleted: readonly CacheUsage[], released: ReadonlySet<string>): number {
  let total = 0;
  for (const u of deleted) {
    const per = u.record.results.length === 0 ? 0 : u.size / u.record.results.length;
    for (const ref of u.record.results) if (released.has(ref.id)) total += per;
  }
  return Math.round(total);
}

/** The snapshot grace period: `KILN_GC_GRACE_SECONDS` when set (tests, tight disks), else the worker's default. */
function graceMs(): number {
  const text = process.env["KILN_GC_GRACE_SECONDS"];
  const seconds = text === undefined || text === "" ? Number.NaN : Number(text);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : SNAPSHOT_GRACE_MS;
}

/** The default garbage collection after builds, as BuildKit's default policy shapes it. */
export interface GcPolicy {
  /** Build-context snapshots unused this long are deleted first. */
  readonly keepDurationLocal: number;
  /** Then the least recently used records go until the cache uses at most this many bytes. */
  readonly keepStorage: number;
  /** GC runs at most once per this many milliseconds per state root. */
  readonly interval: number;
}

const GIB = 1024 ** 3;
/** The default policy's interval: GC runs at most once an hour per state root. */
const GC_INTERVAL_MS = 3600_000;

/**
 * kiln's default: keep at most min(5 GiB, 10% of the state root's file system), drop build
 * contexts unused for 48 hours, and look at most once an hour (listing and sizing every record
 * is not free, and a cached rebuild must stay fast).
 */
export async function defaultGcPolicy(root: string): Promise<GcPolicy> {
  let tenPercent = 5 * GIB;
  try {
    const fs = await statfs(root);
    tenPercent = Math.floor(fs.blocks * fs.bsize * 0.1);
  } catch {
    // Unknown file system size: the fixed cap alone.
  }
  return { keepDurationLocal: 48 * 3600_000, keepStorage: Math.min(5 * GIB, tenPercent), interval: GC_INTERVAL_MS };
}

/** The stamp whose mtime says when the default garbage collection last ran on a state root. */
function gcStamp(root: string): string {
  return join(root, "cache", "gc-stamp");
}

/**
 * Whether the default garbage collection is due on `root`: its last run (the stamp's mtime) is
 * older than the interval. One statx, synchronous: a build that finds GC not due pays nothing
 * more. A root without a stamp has never been collected because it is new (an empty root has
 * nothing to collect): its clock starts now, and the first collection comes an interval later.
 */
export function gcDue(root: string, now = Date.now()): boolean {
  const stamp = gcStamp(root);
  const last = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs;
  if (last !== undefined) return now - last >= GC_INTERVAL_MS;
  try {
    writeFileSync(stamp, "", { flag: "wx" });
  } catch {
    // Another kiln wrote it first, or the root is read-only: either way not due here.
  }
  return false;
}

/**
 * Runs the default garbage collection when it is due (gcDue; concurrent kilns may both run it,
 * which is safe). Returns undefined when it was not due.
 */
export async function collectGarbage(root: string, store: CacheStore, worker: GcWorker, now = Date.now()): Promise<PruneReport | undefined> {
  if (!gcDue(root, now)) return undefined;
  const stamp = gcStamp(root);
  const policy = await defaultGcPolicy(root);
  await writeFile(stamp, "");
  await utimes(stamp, now / 1000, now / 1000);
  const local = await pruneBuildCache(store, worker, {
    keepDuration: policy.keepDurationLocal,
    filter: (u) => u.record.type === "source.local",
    now,
  });
  const bySize = await pruneBuildCache(store, worker, { keepStorage: policy.keepStorage, now }, { forgetFeaturesBefore: now - policy.keepDurationLocal });
  return {
    deleted: [...local.deleted, ...bySize.deleted],
    freedBytes: local.freedBytes + bySize.freedBytes,
    snapshots: [...local.snapshots, ...bySize.snapshots],
    blobs: [...local.blobs, ...bySize.blobs],
  };
}
