import type { Digest } from "./llb/index.js";
import type { CacheRecord, CacheStore } from "./cache-store.js";
import type { ResultRef } from "./op.js";

/**
 * One record as `kiln du` shows it. `size` is the record file plus, per result, what `sizeOf` says
 * (the snapshot's disk use); `shared` is true when another record refers to one of its results
 * (a content-key record and its alias, or two keys that produced the same snapshot).
 */
export interface CacheUsage {
  readonly key: Digest;
  readonly record: CacheRecord;
  readonly size: number;
  readonly shared: boolean;
}

export interface UsageOptions {
  /** Bytes a result uses on disk (the worker's snapshot usage); default: 0 (record files only). */
  readonly sizeOf?: (ref: ResultRef) => Promise<number>;
}

/** Reads every record of `store` with its size and sharing, most recently used first. */
export async function collectUsage(store: CacheStore, options: UsageOptions = {}): Promise<CacheUsage[]> {
  const entries = [];
  for await (const entry of store.list()) entries.push(entry);
  const users = new Map<string, number>();
  for (const { record } of entries) for (const ref of record.results) users.set(ref.id, (users.get(ref.id) ?? 0) + 1);
  const sizes = new Map<string, number>();
  const sizeOf = options.sizeOf;
  if (sizeOf !== undefined) {
    await Promise.all([...users.keys()].map(async (id) => sizes.set(id, await sizeOf({ id }))));
  }
  return entries
    .map((entry) => ({
      key: entry.key,
      record: entry.record,
      size: entry.size + entry.record.results.reduce((total, ref) => total + (sizes.get(ref.id) ?? 0), 0),
      shared: entry.record.results.some((ref) => (users.get(ref.id) ?? 0) > 1),
    }))
    .sort((a, b) => b.record.lastUsed - a.record.lastUsed);
}

/** What to prune, as `kiln prune` and the default garbage collection ask for it. */
export interface PrunePolicy {
  /** Delete every record the filter admits. */
  readonly all?: boolean;
  /** Delete records not used for this many milliseconds. */
  readonly keepDuration?: number;
  /** Then delete least recently used records until the rest use at most this many bytes. */
  readonly keepStorage?: number;
  /** Only records for which this is true are considered. */
  readonly filter?: (usage: CacheUsage) => boolean;
  /** The current time (ms since the epoch); default: now. */
  readonly now?: number;
}

/**
 * Chooses the records to delete under `policy`, from `usage` as `collectUsage` returns it. Pure.
 * Bytes are counted the way deleting frees them: a result shared by several records is counted
 * once and freed only with the last record that refers to it.
 */
export function selectForPrune(usage: readonly CacheUsage[], policy: PrunePolicy): CacheUsage[] {
  const now = policy.now ?? Date.now();
  const admitted = (u: CacheUsage): boolean => policy.filter === undefined || policy.filter(u);
  const chosen = new Set<CacheUsage>();
  for (const u of usage) {
    if (!admitted(u)) continue;
    if (policy.all === true || (policy.keepDuration !== undefined && now - u.record.lastUsed > policy.keepDuration)) chosen.add(u);
  }
  if (policy.keepStorage !== undefined) {
    const refs = new Map<string, number>();
    const refSize = new Map<string, number>();
    let total = 0;
    for (const u of usage) {
      if (chosen.has(u)) continue;
      // Apportion an entry's result bytes evenly over its results; the record file is its own.
      const perResult = u.record.results.length === 0 ? 0 : u.size / u.record.results.length;
      for (const ref of u.record.results) {
        if (!refs.has(ref.id)) {
          refSize.set(ref.id, perResult);
          total += perResult;
        }
        refs.set(ref.id, (refs.get(ref.id) ?? 0) + 1);
      }
      if (u.record.results.length === 0) total += u.size;
    }
    const oldestFirst = [...usage].filter((u) => !chosen.has(u) && admitted(u)).sort((a, b) => a.record.lastUsed - b.record.lastUsed);
    for (const u of oldestFirst) {
      if (total <= policy.keepStorage) break;
      chosen.add(u);
      if (u.record.results.length === 0) total -= u.size;
      for (const ref of u.record.results) {
        const left = (refs.get(ref.id) ?? 1) - 1;
        refs.set(ref.id, left);
        if (left === 0) total -= refSize.get(ref.id) ?? 0;
      }
    }
  }
  return usage.filter((u) => chosen.has(u));
}

/** What a prune did: the records deleted, and the results no remaining record refers to. */
export interface PruneResult {
  readonly deleted: readonly CacheUsage[];
  /** Results the caller (the worker) may now delete: no record left in the store names them. */
  readonly released: readonly ResultRef[];
  /** The summed sizes of the deleted records (a result shared between them counts with each). */
  readonly freedBytes: number;
}

/**
 * Deletes the records `selectForPrune` chooses and reports the results they leave unreferenced.
 * Records written by another process meanwhile are kept, and their results are not released.
 */
export async function pruneCache(store: CacheStore, policy: PrunePolicy, options: UsageOptions = {}): Promise<PruneResult> {
  const usage = await collectUsage(store, options);
  const chosen = selectForPrune(usage, policy);
  const deleted: CacheUsage[] = [];
  for (const u of chosen) if (await store.delete(u.key)) deleted.push(u);
  const stillUsed = new Set<string>();
  for await (const entry of store.list()) for (const ref of entry.record.results) stillUsed.add(ref.id);
  const released = new Map<string, ResultRef>();
  for (const u of deleted) for (const ref of u.record.results) if (!stillUsed.has(ref.id)) released.set(ref.id, ref);
  return { deleted, released: [...released.values()], freedBytes: deleted.reduce((total, u) => total + u.size, 0) };
}
