import { sha256, type ImageMetadata, type ImageSpec } from "../../solver/llb/index.js";
import { reportVertex, type ProgressSink, type VertexProgress } from "../../solver/progress.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import type { LayerCompression } from "../../worker/oci/index.js";
import type { Descriptor } from "../../worker/oci/index.js";
import type { LayerBlob, LayerSource } from "../../worker/snapshotter/types.js";
import { ExportError } from "../errors.js";
import { resolveCompression } from "./compressor.js";
import { buildImageSpec, serializeImageSpec } from "./config.js";
import { imageTime } from "./epoch.js";
import { clampHistory, imageCreated, normalizeHistory } from "./history.js";
import { exportLayers } from "./layers.js";
import type { LayerVariants } from "./layer-variants.js";
import { buildManifest, imageMediaTypes, serializeManifest } from "./manifest.js";

export interface BuildImageInput {
  /** The image's layers, base first. */
  readonly layers: readonly LayerSource[];
  /** Platform, runtime config and history (base image lines + one per instruction) from the frontend. */
  readonly image: ImageMetadata;
  readonly content: ContentStore;
  /** Compression of new layer blobs; default gzip. zstd needs the `zstd` program (Node 20's zlib has none). */
  readonly compression?: LayerCompression;
  /** gzip 0-9 (default 6), zstd 1-22 (default 3). */
  readonly compressionLevel?: number;
  /** Recompress reused blobs whose compression differs from `compression`. Default false. */
  readonly forceCompression?: boolean;
  /** Default true; false writes Docker schema 2 media types. */
  readonly ociMediaTypes?: boolean;
  /** SOURCE_DATE_EPOCH in seconds: the config's `created` and every newer history time become this. */
  readonly epoch?: number;
  /**
   * BuildKit's rewrite-timestamp (needs `epoch`): file times in new layers after `epoch` are clamped
   * to it, so rebuilding the same input gives the same layer digests. Layers with `blob` are reused
   * as they are (pass blobs only for base image layers), and rewritten blobs are not reported
   * through `onLayerBlob`, because they depend on the epoch.
   */
  readonly rewriteTimestamp?: boolean;
  /** Annotations of the manifest itself (BuildKit's `annotation-manifest.*`). */
  readonly manifestAnnotations?: Readonly<Record<string, string>>;
  /**
   * Annotations of the returned manifest descriptor (BuildKit's `annotation-manifest-descriptor.*`):
   * they end up where the descriptor is written, an index's entry or a layout's index.json.
   */
  readonly descriptorAnnotations?: Readonly<Record<string, string>>;
  /**
   * Blobs already made for a diff id in some compression, so that a forced recompression
   * (`forceCompression`) is done once per layer and compression, not once per export.
   */
  readonly variants?: LayerVariants;
  /** Called when a layer blob was made for a snapshot, so the caller can remember it (snapshotter.setBlob) and never compress it again. */
  readonly onLayerBlob?: (snapshot: string, blob: LayerBlob) => Promise<void>;
  readonly signal?: AbortSignal;
  readonly onEvent?: ProgressSink;
}

/** An image in the content store: its manifest, config and layer descriptors, and the config itself. */
export interface BuiltImage {
  readonly kind: "image";
  /** The manifest's descriptor (with the `descriptorAnnotations` asked for). */
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly spec: ImageSpec;
}

/**
 * Turns layers and image metadata into an image in the content store: layer blobs (reused or
 * compressed, empty ones dropped), the config (history normalised against the layers), and the
 * manifest. Nothing outside the content store is written. Reproducible: the same layers, metadata,
 * options and `epoch` give the same manifest digest; without `epoch`, so do the same committed
 * snapshots (times come from their commits, see normalizeHistory).
 */
export async function buildImage(input: BuildImageInput): Promise<BuiltImage> {
  const compression = resolveCompression(input.compression, input.compressionLevel);
  if (input.rewriteTimestamp === true && input.epoch === undefined) {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", "Cannot rewrite layer timestamps: rewrite-timestamp needs SOURCE_DATE_EPOCH (an epoch) to clamp to");
  }
  const oci = input.ociMediaTypes ?? true;
  const now = imageTime(input.epoch);
  const sink = input.onEvent;
  const withVertex = <T>(name: string, work: (progress: VertexProgress | undefined) => Promise<T>): Promise<T> =>
    sink === undefined ? work(undefined) : reportVertex(sink, sha256(`kiln.exporter:${name}:${input.layers.map((l) => l.snapshot).join(",")}`), name, work);

  const exported = await withVertex("exporting layers", (progress) =>
    exportLayers(input.layers, {
      content: input.content,
      compression,
      ociMediaTypes: oci,
      ...(input.forceCompression === undefined ? {} : { forceCompression: input.forceCompression }),
      ...(input.variants === undefined ? {} : { variants: input.variants }),
      ...(input.onLayerBlob === undefined ? {} : { onLayerBlob: input.onLayerBlob }),
      ...(input.rewriteTimestamp === true && input.epoch !== undefined ? { rewriteEpoch: input.epoch } : {}),
      ...(progress === undefined ? {} : { progress }),
      ...(input.signal === undefined ? {} : { signal: input.signal }),
    }),
  );
  const kept = exported.filter((layer) => !layer.empty);
  const layerTimes = exported.map((layer, i) => {
    const made = input.layers[i]?.created;
    return { empty: layer.empty, ...(made === undefined ? {} : { created: imageTime(undefined, made) }) };
  });
  let history = normalizeHistory(input.image.history, layerTimes, now);
  // Without an epoch the image is as old as its newest line: a fully cached rebuild, whose layers
  // keep their times, writes the same config and keeps its digest (BuildKit's behaviour).
  const created = input.epoch === undefined ? imageCreated(history, now) : now;
  if (input.epoch !== undefined) history = clampHistory(history, created);

  return withVertex("exporting manifest and config", async () => {
    const spec = buildImageSpec({ image: input.image, diffIds: kept.map((l) => l.diffId), history, created });
    const types = imageMediaTypes(oci);
    const configBlob = await input.content.writeBytes(serializeImageSpec(spec));
    const config: Descriptor = { mediaType: types.config, digest: configBlob.digest, size: configBlob.size };
    const layers = kept.map((l) => l.descriptor);
    const manifestBlob = await input.content.writeBytes(serializeManifest(buildManifest(config, layers, oci, input.manifestAnnotations)));
    const descriptorAnnotations = input.descriptorAnnotations;
    const manifest: Descriptor = {
      mediaType: types.manifest,
      digest: manifestBlob.digest,
      size: manifestBlob.size,
      ...(descriptorAnnotations === undefined || Object.keys(descriptorAnnotations).length === 0 ? {} : { annotations: descriptorAnnotations }),
    };
    return { kind: "image", manifest, config, layers, spec };
  });
}
