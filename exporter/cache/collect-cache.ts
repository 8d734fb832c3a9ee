import type { Digest } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import type { Descriptor } from "../../worker/oci/index.js";
import type { LayerSource, SnapshotId, SnapshotInfo, Snapshotter } from "../../worker/snapshotter/types.js";
import { diffSnapshot } from "../../worker/differ/index.js";
import { resolveCompression } from "../image/compressor.js";
import { exportLayers } from "../image/layers.js";
import type { CacheConfig, CacheConfigRecord, CacheLayer, CacheMountEntry, SolverRecordData } from "./cache-config.js";

/** A cache ready to ship: its config, and every blob it names (all in the content store). */
export interface CollectedCache {
  readonly config: CacheConfig;
  readonly blobs: readonly Descriptor[];
}

export interface CollectCacheOptions {
  readonly content: ContentStore;
  readonly snapshotter: Snapshotter;
  /** The records to ship (the solver's `exportCacheManifest(...).records`). */
  readonly records: readonly { readonly key: Digest; readonly record: SolverRecordData }[];
  /** Cache mounts already packed (see packCacheMounts); default none. */
  readonly mounts?: readonly CacheMountEntry[];
  readonly signal?: AbortSignal;
}

/**
 * Turns solver records into a CacheConfig: each result (a snapshot id) becomes its snapshot
 * chain, one layer per snapshot, shared between records. A snapshot's known blob (pulled base
 * layers, earlier image exports) is reused; the others are diffed and gzip-compressed into the
 * content store once, and remembered on the snapshot (`setBlob`), as the image exporter does.
 * Records of local sources (`source.local`: the build context) are left out: they are cheap to
 * make again and would ship the context itself. A record whose snapshots are gone (pruned) is
 * left out too.
 */
export async function collectCache(options: CollectCacheOptions): Promise<CollectedCache> {
  const { snapshotter } = options;
  const chains = new Map<SnapshotId, readonly SnapshotInfo[]>();
  const usable: { key: Digest; record: SolverRecordData; tops: SnapshotId[] }[] = [];
  for (const { key, record } of options.records) {
    if (record.type === "source.local") continue;
    const tops: SnapshotId[] = [];
    for (const ref of record.results) {
      if (!chains.has(ref.id)) {
        if (!(await snapshotter.exists(ref.id))) break;
        chains.set(ref.id, await snapshotter.chain(ref.id));
      }
      tops.push(ref.id);
    }
    if (tops.length === record.results.length) usable.push({ key, record, tops });
  }

  // Every snapshot of every chain, parents first, once.
  const order: SnapshotInfo[] = [];
  const seen = new Set<SnapshotId>();
  for (const chain of chains.values()) {
    for (const info of chain) {
      if (seen.has(info.id)) continue;
      seen.add(info.id);
      order.push(info);
    }
  }
  const sources: LayerSource[] = order.map((info) => ({
    snapshot: info.id,
    blob: info.blob,
    openTar: (signal?: AbortSignal) => diffSnapshot(snapshotter, info.id, signal === undefined ? {} : { signal }),
  }));
  const exported = await exportLayers(sources, {
    content: options.content,
    compression: resolveCompression("gzip"),
    ociMediaTypes: true,
    onLayerBlob: (snapshot, blob) => snapshotter.setBlob(snapshot, blob),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });

  const index = new Map<SnapshotId, number>();
  const layers: CacheLayer[] = [];
  const blobs = new Map<Digest, Descriptor>();
  order.forEach((info, i) => {
    const layer = exported[i];
    if (layer === undefined) return;
    const parent = info.parent === null ? -1 : (index.get(info.parent) ?? -1);
    index.set(info.id, layers.length);
    layers.push(layer.empty ? { diffId: layer.diffId, parent } : { blob: layer.descriptor, diffId: layer.diffId, parent });
    if (!layer.empty) blobs.set(layer.descriptor.digest, layer.descriptor);
  });
  const records: CacheConfigRecord[] = usable.map(({ key, record, tops }) => ({
    key,
    results: tops.map((id) => index.get(id) as number),
    created: record.created,
    ...(record.vertexName === undefined ? {} : { vertexName: record.vertexName }),
    ...(record.type === undefined ? {} : { type: record.type }),
    ...(record.keyInputs === undefined ? {} : { keyInputs: record.keyInputs }),
    ...(record.canonicalKey === undefined ? {} : { canonicalKey: record.canonicalKey }),
  }));
  const mounts = options.mounts ?? [];
  for (const mount of mounts) blobs.set(mount.blob.digest, mount.blob);
  return { config: { version: 1, layers, records, mounts }, blobs: [...blobs.values()] };
}
