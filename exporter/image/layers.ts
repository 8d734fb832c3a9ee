import { createHash, type Hash } from "node:crypto";
import { availableParallelism } from "node:os";
import { PassThrough, Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import PQueue from "p-queue";
import type { Digest } from "../../solver/llb/index.js";
import type { VertexProgress } from "../../solver/progress.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import { layerCompression, type Descriptor } from "../../worker/oci/index.js";
import type { LayerBlob, LayerSource } from "../../worker/snapshotter/types.js";
import { ExportError } from "../errors.js";
import { createCompressor, createDecompressor, layerMediaType, type ResolvedCompression } from "./compressor.js";
import { clampTarTimes } from "./epoch.js";
import type { LayerVariants } from "./layer-variants.js";

/** One layer of the image-to-be, in the content store. `empty` layers (a tar with no entries) are left out of the image. */
export interface ExportedLayer {
  readonly snapshot: string;
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  readonly empty: boolean;
}

export interface ExportLayersOptions {
  readonly content: ContentStore;
  readonly compression: ResolvedCompression;
  readonly ociMediaTypes: boolean;
  /** Recompress reused blobs whose compression differs from `compression` (BuildKit's force-compression). */
  readonly forceCompression?: boolean;
  /** Where blobs made per diff id and compression are recorded and looked up, so each is made once. */
  readonly variants?: LayerVariants;
  /**
   * rewrite-timestamp: new layers get file times after this (seconds) clamped to it. Such blobs
   * depend on the epoch, so they are not reported through `onLayerBlob`; reused blobs keep their
   * times (pass `blob` only for base image layers when rewriting).
   */
  readonly rewriteEpoch?: number;
  /** Called once per newly made, non-empty blob (not for rewritten ones, see `rewriteEpoch`). */
  readonly onLayerBlob?: (snapshot: string, blob: LayerBlob) => Promise<void>;
  readonly progress?: VertexProgress;
  readonly signal?: AbortSignal;
}

/**
 * Makes sure every layer has a blob in the content store; returns them in input order (base
 * first). A source with `blob` is reused as it is (only its media type is converted between OCI
 * and Docker names), so base layers and earlier exports are never compressed again, unless
 * `forceCompression` asks for another compression: then the blob is decompressed and compressed
 * again once, and the result recorded in `variants` for later exports. Others are
 * streamed once from `openTar()` through sha256 (the diff id) and the compressor into
 * `content.ingest`. Layers are made in parallel, up to the core count at once; each gzip layer
 * is itself compressed block-parallel on libuv's thread pool, so even one big layer uses every
 * core. A new layer whose tar has no entries is marked `empty` and `onLayerBlob` is not called
 * for it: remembering it would make the next export keep a layer this one dropped.
 */
export async function exportLayers(layers: readonly LayerSource[], options: ExportLayersOptions): Promise<readonly ExportedLayer[]> {
  const queue = new PQueue({ concurrency: Math.max(2, availableParallelism()) });
  // The first failure (or the caller's abort) stops the other layers; every task is awaited, so
  // no temp file or stream is left behind when this rejects.
  const stop = new AbortController();
  const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal]);
  const results = await Promise.allSettled(
    layers.map((layer) =>
      queue.add(async () => {
        signal.throwIfAborted();
        return exportLayer(layer, { ...options, signal });
      }).catch((error: unknown) => {
        stop.abort(error);
        throw error;
      }),
    ),
  );
  // The first error in time is the one that aborted `stop`; the others are its consequences.
  if (results.some((r) => r.status === "rejected")) throw stop.signal.reason;
  return results.map((r) => (r as PromiseFulfilledResult<ExportedLayer>).value);
}

async function exportLayer(layer: LayerSource, options: ExportLayersOptions): Promise<ExportedLayer> {
  const wanted = options.compression.kind;
  if (layer.blob !== undefined) {
    const blob = layer.blob;
    const stored = layerCompression(blob.descriptor.mediaType);
    if (stored === wanted) return reused(layer, blob.descriptor, blob.diffId, options);
    // A variant in the wanted compression made by an earlier export costs nothing: prefer it.
    const known = await options.variants?.get(blob.diffId, wanted);
    if (known !== undefined) return reused(layer, known, blob.diffId, options);
    // Without force-compression the stored blob is kept as it is (BuildKit's rule), unless Docker
    // media types are asked for and it is zstd, which Docker schema 2 cannot name.
    const mustConvert = options.forceCompression === true || (!options.ociMediaTypes && stored === "zstd");
    if (!mustConvert) return reused(layer, blob.descriptor, blob.diffId, options);
    const converted = await compressLayer(layer, options, () => convertingSource(blob, options.content, options.signal));
    if (converted.diffId !== blob.diffId) {
      throw new ExportError(
        "KILN_EXPORT_INVALID_IMAGE",
        `Cannot recompress layer ${blob.descriptor.digest}: its content decompresses to ${converted.diffId}, not its diff id ${blob.diffId}`,
      );
    }
    await options.variants?.set(blob.diffId, wanted, converted.descriptor);
    return { snapshot: layer.snapshot, descriptor: converted.descriptor, diffId: blob.diffId, empty: false };
  }
  const { descriptor, diffId, empty } = await compressLayer(layer, options, () => {
    const opened = layer.openTar(options.signal);
    return options.rewriteEpoch === undefined ? opened : clampTarTimes(opened, options.rewriteEpoch);
  });
  if (!empty && options.rewriteEpoch === undefined) {
    await options.onLayerBlob?.(layer.snapshot, { descriptor, diffId });
    await options.variants?.set(diffId, wanted, descriptor);
  }
  return { snapshot: layer.snapshot, descriptor, diffId, empty };
}

function reused(layer: LayerSource, descriptor: Descriptor, diffId: Digest, options: ExportLayersOptions): ExportedLayer {
  return { snapshot: layer.snapshot, descriptor: convertMediaType(descriptor, options.ociMediaTypes), diffId, empty: false };
}

/** The uncompressed tar of a stored blob. */
function convertingSource(blob: LayerBlob, content: ContentStore, signal: AbortSignal | undefined): Readable {
  const kind = layerCompression(blob.descriptor.mediaType);
  if (kind === undefined) throw new ExportError("KILN_EXPORT_INVALID_IMAGE", `Cannot recompress layer ${blob.descriptor.digest}: media type "${blob.descriptor.mediaType}" is not a layer type`);
  const decompressed = createDecompressor(kind);
  pipeline(content.openRead(blob.descriptor.digest), decompressed, signal === undefined ? {} : { signal }).catch((error: unknown) => decompressed.destroy(error as Error));
  return decompressed;
}

async function compressLayer(layer: LayerSource, options: ExportLayersOptions, openSource: () => Readable): Promise<{ descriptor: Descriptor; diffId: Digest; empty: boolean }> {
  // Uncompressed, the blob is the tar: the store's hash on ingest is the diff id, so the tar is
  // hashed once, and no pass-through compressor stage is added.
  const uncompressed = options.compression.kind === "uncompressed";
  const tap = new DiffIdTap(!uncompressed);
  const compressed = new PassThrough();
  const signalOption = options.signal === undefined ? {} : { signal: options.signal };
  const producing = uncompressed
    ? pipeline(openSource(), tap, compressed, signalOption)
    : pipeline(openSource(), tap, createCompressor(options.compression), compressed, signalOption);
  const progress = options.progress;
  const ingesting = options.content.ingest(compressed, {
    ...signalOption,
    ...(progress === undefined ? {} : { onBytes: (bytes: number) => progress.bytes(layer.snapshot, bytes) }),
  });
  // Wait for both, so the store has removed its temp file before a failure is reported; the
  // producing side's error is the cause (the ingest side then only sees a premature close).
  const [produced, ingested] = await Promise.allSettled([producing, ingesting]);
  if (produced.status === "rejected") throw produced.reason;
  if (ingested.status === "rejected") throw ingested.reason;
  const stored = ingested.value;
  const mediaType = layerMediaType(options.compression.kind, options.ociMediaTypes);
  return { descriptor: { mediaType, digest: stored.digest, size: stored.size }, diffId: tap.digest() ?? stored.digest, empty: tap.empty() };
}

/** The same blob under the other family's media type name, as BuildKit's ConvertAllLayerMediaTypes does. */
function convertMediaType(descriptor: Descriptor, oci: boolean): Descriptor {
  const compression = layerCompression(descriptor.mediaType);
  if (compression === undefined) return descriptor;
  const mediaType = layerMediaType(compression, oci);
  return mediaType === descriptor.mediaType ? descriptor : { ...descriptor, mediaType };
}

/**
 * Passes the uncompressed tar through, hashing it for the diff id and watching its first 512-byte
 * block: a tar with entries starts with a non-zero header, an empty one is only zero blocks.
 */
class DiffIdTap extends Transform {
  readonly #hash: Hash | undefined;
  #head: Buffer = Buffer.alloc(0);

  /** `hashing` false: only the emptiness check (the caller knows the diff id otherwise). */
  constructor(hashing = true) {
    super();
    this.#hash = hashing ? createHash("sha256") : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash?.update(chunk);
    if (this.#head.byteLength < 512) this.#head = Buffer.concat([this.#head, chunk.subarray(0, 512 - this.#head.byteLength)]);
    callback(null, chunk);
  }

  /** The diff id, or undefined for a tap made without hashing. */
  digest(): Digest | undefined {
    return this.#hash === undefined ? undefined : (`sha256:${this.#hash.digest("hex")}` as Digest);
  }

  empty(): boolean {
    return this.#head.every((byte) => byte === 0);
  }
}
