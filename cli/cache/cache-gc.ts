import { statfs, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { collectUsage, pruneCache, type CacheStore, type CacheUsage, type PrunePolicy } from "../../solver/index.js";
import { isKilnError } from "../../solver/llb/index.js";
import { snapshotUsage, type Snapshotter } from "../../worker/index.js";

/** Every cache record with its size (record file + its snapshots' own disk use), most recently used first. */
export function cacheUsage(store: CacheStore, snapshotter: Snapshotter): Promise<CacheUsage[]> {
  return collectUsage(store, { sizeOf: (ref) => snapshotUsage(snapshotter, ref.id) });
}

/** What `kiln prune` or the garbage collection did. */
export interface PruneReport {
  readonly deleted: readonly CacheUsage[];
  readonly freedBytes: number;
  /** Snapshots deleted because no record named them any more. */
  readonly snapshots: readonly string[];
}

/**
 * Deletes the records `policy` chooses, then the snapshots no remaining record names, top down:
 * a snapshot that is still the parent of another (a kept record's, or a running build's) stays,
 * and once a released snapshot is gone, its parent goes too when nothing names it either.
 */
export async function pruneBuildCache(store: CacheStore, snapshotter: Snapshotter, policy: PrunePolicy): Promise<PruneReport> {
  const pruned = await pruneCache(store, policy, { sizeOf: (ref) => snapshotUsage(snapshotter, ref.id) });
  if (pruned.released.length === 0) return { deleted: pruned.deleted, freedBytes: pruned.freedBytes, snapshots: [] };
  const named = new Set<string>();
  for await (const entry of store.list()) for (const ref of entry.record.results) named.add(ref.id);
  const depths = new Map<string, number>();
  for (const ref of pruned.released) {
    const chain = await snapshotter.chain(ref.id).catch(() => undefined);
    if (chain !== undefined) depths.set(ref.id, chain.length);
  }
  const removed: string[] = [];
  const removeUpward = async (id: string): Promise<void> => {
    if (named.has(id)) return;
    let parent: string | null;
    try {
      parent = (await snapshotter.info(id)).parent;
      await snapshotter.remove(id);
    } catch (error) {
      // Still a parent, still active, or already gone (another prune): leave it.
      if (isKilnError(error)) return;
      throw error;
    }
    removed.push(id);
    if (parent !== null) await removeUpward(parent);
  };
  for (const id of [...depths.keys()].sort((a, b) => (depths.get(b) ?? 0) - (depths.get(a) ?? 0))) await removeUpward(id);
  return { deleted: pruned.deleted, freedBytes: pruned.freedBytes, snapshots: removed };
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
  return { keepDurationLocal: 48 * 3600_000, keepStorage: Math.min(5 * GIB, tenPercent), interval: 3600_000 };
}

/**
 * Runs the default garbage collection when the last run on this root is older than its interval
 * (a stamp file's mtime; concurrent kilns may both run it, which is safe). Returns undefined when
 * it was not due.
 */
export async function collectGarbage(root: string, store: CacheStore, snapshotter: Snapshotter, now = Date.now()): Promise<PruneReport | undefined> {
  const policy = await defaultGcPolicy(root);
  const stamp = join(root, "cache", "gc-stamp");
  try {
    if (now - (await stat(stamp)).mtimeMs < policy.interval) return undefined;
  } catch {
    // Never collected here: due now.
  }
  await writeFile(stamp, "");
  await utimes(stamp, now / 1000, now / 1000);
  const local = await pruneBuildCache(store, snapshotter, {
    keepDuration: policy.keepDurationLocal,
    filter: (u) => u.record.type === "source.local",
    now,
  });
  const bySize = await pruneBuildCache(store, snapshotter, { keepStorage: policy.keepStorage, now });
  return {
    deleted: [...local.deleted, ...bySize.deleted],
    freedBytes: local.freedBytes + bySize.freedBytes,
    snapshots: [...local.snapshots, ...bySize.snapshots],
  };
}
