import type { Readable } from "node:stream";
import type { Digest } from "../../solver/llb/index.js";
import type { ResultRef } from "../../solver/op.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import { layerCompression, type Descriptor } from "../../worker/oci/index.js";
import { applyLayer } from "../../worker/snapshotter/apply-layer.js";
import type { SnapshotId, Snapshotter } from "../../worker/snapshotter/types.js";
import { chainIdOf } from "../../worker/snapshotter/unpack.js";
import { inUserNamespace } from "../../worker/snapshotter/user-namespace.js";
import { createDecompressor } from "../image/compressor.js";
import { CacheImportError, type CacheConfig, type CacheConfigRecord, type CacheMountEntry, type SolverRecordData } from "./cache-config.js";

/** Where an imported cache's blobs come from: a local cache directory or a registry repository. */
export interface BlobSource {
  /** Names the cache in messages: `local cache "/ci/cache"`, `registry cache "host/repo:tag"`. */
  readonly name: string;
  /** Whether the blob is there to fetch, cheaply (a stat for a directory; a registry is trusted). */
  has(descriptor: Descriptor): Promise<boolean>;
  /** Puts the blob into `content`, verified against its digest and size. */
  fetch(descriptor: Descriptor, content: ContentStore, signal?: AbortSignal): Promise<void>;
}

export interface ImportedCacheOptions {
  readonly config: CacheConfig;
  readonly blobs: BlobSource;
  readonly content: ContentStore;
  readonly snapshotter: Snapshotter;
  /** Told when a record cannot be used after all (a missing or corrupt blob); the step then runs. */
  readonly onWarning?: (message: string) => void;
}

/**
 * An imported cache as the solver's `CacheSource` (solver/cache-source.ts; the shape is repeated
 * here because the exporter may not import the solver's cache modules). `load` answers from the
 * config, checking only that the record's blobs are there; `materialize` fetches the blobs of the
 * record's chains (only those: what a build does not need is never fetched), applies each layer
 * into a committed snapshot with its blob and chain id, and reuses a snapshot this root already
 * has for the same chain id (a base image pulled before, an earlier import). A blob whose bytes
 * do not match its digest is refused by the content store: the record is reported through
 * `onWarning` and `materialize` answers undefined, so the step runs instead of failing the build.
 */
export class ImportedCache {
  readonly #options: ImportedCacheOptions;
  readonly #records: ReadonlyMap<Digest, CacheConfigRecord>;
  readonly #present = new Map<number, Promise<boolean>>();
  readonly #snapshots = new Map<number, Promise<{ id: SnapshotId; chainId: Digest }>>();

  constructor(options: ImportedCacheOptions) {
    this.#options = options;
    this.#records = new Map(options.config.records.map((r) => [r.key, r]));
  }

  /** The cache mounts this cache carries. */
  get mounts(): readonly CacheMountEntry[] {
    return this.#options.config.mounts;
  }

  /** The record under `key` with results named `imported:<layer>`; undefined when absent or a blob is missing. */
  async load(key: Digest): Promise<SolverRecordData | undefined> {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    for (const top of record.results) {
      if (!(await this.#chainPresent(top))) return undefined;
    }
    return {
      results: record.results.map((layer) => ({ id: `imported:${layer}` })),
      created: record.created,
      lastUsed: record.created,
      ...(record.vertexName === undefined ? {} : { vertexName: record.vertexName }),
      ...(record.type === undefined ? {} : { type: record.type }),
      ...(record.keyInputs === undefined ? {} : { keyInputs: record.keyInputs }),
      ...(record.canonicalKey === undefined ? {} : { canonicalKey: record.canonicalKey }),
    };
  }

  /** Local snapshots for the record's results; undefined (after a warning) when a blob cannot be had. */
  async materialize(key: Digest, _record: SolverRecordData, signal: AbortSignal): Promise<readonly ResultRef[] | undefined> {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    try {
      const ids = await Promise.all(record.results.map(async (layer) => (await this.#snapshot(layer, signal)).id));
      return ids.map((id) => ({ id }));
    } catch (error) {
      if (signal.aborted) throw error;
      const why = error instanceof Error ? error.message : String(error);
      this.#options.onWarning?.(`Cannot use ${this.#options.blobs.name} for "${record.vertexName ?? key}": ${why}; the step runs instead`);
      return undefined;
    }
  }

  #chainPresent(index: number): Promise<boolean> {
    let present = this.#present.get(index);
    if (present === undefined) {
      const layer = this.#options.config.layers[index];
      present = (async () => {
        if (layer === undefined) return false;
        if (layer.blob !== undefined && !(await this.#options.blobs.has(layer.blob))) {
          this.#options.onWarning?.(`Cannot use layer "${layer.blob.digest}" of ${this.#options.blobs.name}: its blob is missing; steps that need it run instead`);
          return false;
        }
        return layer.parent < 0 || this.#chainPresent(layer.parent);
      })();
      this.#present.set(index, present);
    }
    return present;
  }

  /** The committed snapshot of layer `index` (its parents first), made once per import. */
  #snapshot(index: number, signal: AbortSignal): Promise<{ id: SnapshotId; chainId: Digest }> {
    let made = this.#snapshots.get(index);
    if (made === undefined) {
      made = this.#makeSnapshot(index, signal);
      this.#snapshots.set(index, made);
      // A failed layer may be retried by a later record (with a fresh signal).
      made.catch(() => this.#snapshots.delete(index));
    }
    return made;
  }

  async #makeSnapshot(index: number, signal: AbortSignal): Promise<{ id: SnapshotId; chainId: Digest }> {
    const { snapshotter, content, blobs } = this.#options;
    const layer = this.#options.config.layers[index];
    if (layer === undefined) throw new CacheImportError(`Cannot import layer ${index} of ${blobs.name}: it does not exist`);
    const parent = layer.parent < 0 ? null : await this.#snapshot(layer.parent, signal);
    const chainId = chainIdOf(parent?.chainId ?? null, layer.diffId);
    const existing = await snapshotter.findChain(chainId);
    if (existing !== undefined) return { id: existing, chainId };
    if (layer.blob !== undefined && !(await content.has(layer.blob.digest))) await blobs.fetch(layer.blob, content, signal);
    const active = await snapshotter.prepare(parent?.id ?? null);
    try {
      if (layer.blob !== undefined) {
        const userxattr = active.mount.kind === "overlay" ? active.mount.userxattr : inUserNamespace();
        const applied = await applyLayer(openBlobTar(content, layer.blob), active.upperdir, {
          layerName: layer.blob.digest,
          whiteouts: snapshotter.kind === "overlay" ? "overlay" : "native",
          userxattr,
          ...(active.mount.kind === "overlay" ? { lowerdirs: active.mount.lowerdirs } : {}),
          signal,
        });
        if (applied.diffId !== layer.diffId) {
          throw new CacheImportError(`Cannot import layer "${layer.blob.digest}": its content hashes to "${applied.diffId}" but the cache says "${layer.diffId}"`);
        }
      }
      const id = await snapshotter.commit(active, { chainId, ...(layer.blob === undefined ? {} : { blob: { descriptor: layer.blob, diffId: layer.diffId } }) });
      return { id, chainId };
    } catch (error) {
      await snapshotter.abort(active);
      throw error;
    }
  }
}

/** A fresh uncompressed tar stream of a layer blob in `content`; a read error reaches the reader. */
export function openBlobTar(content: ContentStore, descriptor: Descriptor): Readable {
  const compression = layerCompression(descriptor.mediaType);
  if (compression === undefined) throw new CacheImportError(`Cannot import layer "${descriptor.digest}": unknown layer media type "${descriptor.mediaType}"`);
  const raw = content.openRead(descriptor.digest);
  const tar = createDecompressor(compression);
  raw.on("error", (error) => tar.destroy(error));
  return raw.pipe(tar);
}
