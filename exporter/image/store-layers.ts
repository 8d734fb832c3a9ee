import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContentStore } from "../../worker/content/content-store.js";
import { layerCompression } from "../../worker/oci/index.js";
import type { LayerBlob, LayerSource, SnapshotId } from "../../worker/snapshotter/types.js";

/**
 * Uncompressed layer blobs made for kiln's local image store, as Docker's store keeps layers:
 * an image that only gets a name in the store (`-t`, nothing pushed or written out) needs no
 * compression, and compressing a big layer costs far more than writing it. So such an image's new
 * layers are stored uncompressed, and remembered here per snapshot (one small JSON file per
 * snapshot under `dir`, written to a temp name and renamed), not as the snapshot's own blob:
 * the snapshot's blob stays what exports and pushes reuse, exactly as before, so their bytes
 * never depend on whether a store-only build came first.
 *
 * - `forStore` gives a layer without a blob its store blob, so an unchanged layer is never
 *   tarred again for the store;
 * - `forExport` gives a layer without a blob a tar opener that reads its store blob (the same
 *   bytes a fresh diff of the immutable snapshot gives, read sequentially from one file), so the
 *   compressed blob an export makes is byte-identical to one made from the snapshot.
 * A record whose blob has left the content store reads as absent.
 */
export class StoreLayers {
  readonly #dir: string;
  readonly #content: ContentStore;

  constructor(dir: string, content: ContentStore) {
    this.#dir = dir;
    this.#content = content;
  }

  /** The uncompressed store blob recorded for `snapshot`, if it is still in the content store. */
  async get(snapshot: SnapshotId): Promise<LayerBlob | undefined> {
    let blob: LayerBlob;
    try {
      // Synchronous: a tiny record per layer of every stored image; inline beats four thread-pool trips.
      blob = JSON.parse(readFileSync(this.#file(snapshot), "utf8")) as LayerBlob;
    } catch {
      return undefined;
    }
    return (await this.#content.has(blob.descriptor.digest)) ? blob : undefined;
  }

  /** Remembers an uncompressed blob made for `snapshot`; blobs in any other compression are not store blobs and are ignored. */
  async record(snapshot: SnapshotId, blob: LayerBlob): Promise<void> {
    if (layerCompression(blob.descriptor.mediaType) !== "uncompressed") return;
    await mkdir(this.#dir, { recursive: true });
    const file = this.#file(snapshot);
    const temp = `${file}.kiln-${randomBytes(6).toString("hex")}`;
    try {
      const { mediaType, digest, size } = blob.descriptor;
      await writeFile(temp, JSON.stringify({ descriptor: { mediaType, digest, size }, diffId: blob.diffId }));
      await rename(temp, file);
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Layers for an image that stays in the local store: a layer without a blob reuses its store blob. */
  async forStore(layers: readonly LayerSource[]): Promise<LayerSource[]> {
    return Promise.all(
      layers.map(async (layer) => {
        if (layer.blob !== undefined) return layer;
        const stored = await this.get(layer.snapshot);
        return stored === undefined ? layer : { ...layer, blob: stored };
      }),
    );
  }

  /** Layers for an image that leaves the store: a layer without a blob is read from its store blob instead of diffed again. */
  async forExport(layers: readonly LayerSource[]): Promise<LayerSource[]> {
    return Promise.all(
      layers.map(async (layer) => {
        if (layer.blob !== undefined) return layer;
        const stored = await this.get(layer.snapshot);
        if (stored === undefined) return layer;
        const content = this.#content;
        return {
          ...layer,
          openTar(signal?: AbortSignal) {
            const stream = content.openRead(stored.descriptor.digest);
            signal?.addEventListener("abort", () => stream.destroy(signal.reason as Error), { once: true });
            return stream;
          },
        };
      }),
    );
  }

  #file(snapshot: SnapshotId): string {
    return join(this.#dir, `${snapshot}.json`);
  }
}
