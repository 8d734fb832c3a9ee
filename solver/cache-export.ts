import type { Digest } from "./llb/index.js";
import type { CacheRecord, CacheStore } from "./cache-store.js";
import type { SolvedVertex } from "./scheduler.js";

/** `min`: only what the final result is made of; `max`: every step, intermediate stages included. */
export type CacheExportMode = "min" | "max";

/**
 * A cache as a pure value, ready for `exporter/cache/` to write (local directory, registry
 * artifact, inline in an image config) and to read back. `results` of each record name results
 * (snapshots) that the exporter ships beside the manifest.
 */
export interface CacheManifest {
  readonly version: 1;
  readonly records: readonly CacheManifestRecord[];
}

export interface CacheManifestRecord {
  readonly key: Digest;
  readonly record: CacheRecord;
}

/**
 * The keys to export for a solve, in solve order. `max` takes every vertex that has a record (ran
 * or cached; a skipped vertex has none), with its alias. `min` takes the head and the chain of
 * first inputs under it: the base each step builds on (a RUN's root, a COPY's destination), which
 * is what the final image's layers come from; other stages and copy sources are left out.
 */
export function selectCacheExport(vertices: readonly SolvedVertex[], head: Digest | null, mode: CacheExportMode): Digest[] {
  const byDigest = new Map(vertices.map((v) => [v.digest, v]));
  let chosen: readonly SolvedVertex[];
  switch (mode) {
    case "max":
      chosen = vertices;
      break;
    case "min": {
      const chain = new Set<Digest>();
      let current = head === null ? undefined : byDigest.get(head);
      while (current !== undefined && !chain.has(current.digest)) {
        chain.add(current.digest);
        const first = current.inputs[0];
        current = first === undefined ? undefined : byDigest.get(first);
      }
      chosen = vertices.filter((v) => chain.has(v.digest));
      break;
    }
  }
  return chosen
    .filter((v) => v.status !== "skipped")
    .flatMap((v) => (v.aliasKey === undefined ? [v.key] : [v.key, v.aliasKey]));
}

/** Reads the records of `keys` from `store` into a manifest; keys without a record are left out. */
export async function exportCacheManifest(store: CacheStore, keys: readonly Digest[]): Promise<CacheManifest> {
  const records: CacheManifestRecord[] = [];
  for (const key of new Set(keys)) {
    const record = await store.load(key);
    if (record !== undefined) records.push({ key, record });
  }
  return { version: 1, records };
}

/**
 * Writes the records of an imported manifest into `store`, keeping records the store already has
 * (local knowledge wins). Returns how many were written. The results they name must be made
 * available by the caller (the worker, from the blobs shipped with the manifest); until then the
 * solve's `isAlive` treats them as misses.
 */
export async function importCacheManifest(store: CacheStore, manifest: CacheManifest, now: number = Date.now()): Promise<number> {
  if (manifest.version !== 1) throw new TypeError(`Cannot import cache manifest: unsupported version ${String(manifest.version)}`);
  let written = 0;
  for (const { key, record } of manifest.records) {
    if ((await store.load(key)) !== undefined) continue;
    await store.record(key, { ...record, lastUsed: now });
    written++;
  }
  return written;
}
