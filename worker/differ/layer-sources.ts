import type { LayerSource, SnapshotId, Snapshotter } from "../snapshotter/types.js";
import { diffSnapshot } from "./diff.js";

/**
 * The layers of snapshot `id`'s chain, base first, one per snapshot: the blob already known for
 * it (pulled or exported before), its commit time, and an opener for a fresh deterministic tar of its own changes.
 * Null (an empty image, `FROM scratch` with nothing added) has no layers.
 */
export async function layerSources(snapshotter: Snapshotter, id: SnapshotId | null): Promise<LayerSource[]> {
  if (id === null) return [];
  const chain = await snapshotter.chain(id);
  return chain.map((info) => ({
    snapshot: info.id,
    blob: info.blob,
    created: info.created,
    openTar: (signal?: AbortSignal) => diffSnapshot(snapshotter, info.id, signal === undefined ? {} : { signal }),
  }));
}
