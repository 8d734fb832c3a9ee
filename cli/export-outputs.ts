import { join } from "node:path";
import type { Writable } from "node:stream";
import {
  annotationOptionName, annotationsFor, artifactBlobs, buildImage, buildImageIndex, ExportError, LayerVariants, pinnedName, pushImageNames, rootDescriptor, storeImage,
  StoreLayers,
  writeDockerArchive, writeLocalOutput, writeOciLayout, writeTarOutput, writeTarOutputs,
  type BuiltArtifact, type BuiltImage, type PlatformImage,
} from "../exporter/index.js";
import { reportVertex, type ProgressSink } from "../solver/index.js";
import { assertNever, formatPlatform, sha256, type Digest, type ImageMetadata, type ImageSpec, type Platform } from "../solver/llb/index.js";
import type { ResultRef } from "../solver/op.js";
import { parseReference, type ResolvedImage, type ResolveImageOptions, type Worker } from "../worker/index.js";
import type { ImageOutputOptions, OutputSpec } from "./options/output.js";

/** What the exporters made of a build result. */
export interface ExportedResult {
  readonly digest: Digest | undefined;
  readonly config: ImageSpec | undefined;
  /** BuildKit's exporter response keys (`containerimage.digest`, `image.name`…); `containerimage.descriptor` is JSON text. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** The result of building the target for one platform. */
export interface PlatformResult {
  readonly platform: Platform;
  /** The target's result (null: an empty filesystem). */
  readonly ref: ResultRef | null;
  readonly image: ImageMetadata;
}

/** Everything the exporters need from one build. */
export interface ExportRequest {
  readonly worker: Worker;
  /**
   * One result per platform asked for, in `--platform` order. One: a plain image; several: a
   * multi-platform image (an index) and one subdirectory per platform for `local` and `tar`.
   */
  readonly results: readonly PlatformResult[];
  readonly outputs: readonly OutputSpec[];
  /** `-t` names: stored in the local image store, and pushed when `push` is set. */
  readonly tags: readonly string[];
  /** `--push`: push every `-t` name. */
  readonly push: boolean;
  /** SOURCE_DATE_EPOCH in seconds: the images' `created` and history times, and what `rewrite-timestamp` clamps to. */
  readonly epoch: number | undefined;
  /** Which repositories hold which blobs (from the base images resolved while lowering). */
  readonly locations: BlobLocations;
  /** Where `type=tar,dest=-` writes: standard output for the CLI. */
  readonly stdout: Writable;
  readonly sink: ProgressSink;
  readonly signal: AbortSignal;
  /** Changes each platform's image before it is written anywhere (`--cache-to type=inline` embeds the cache in its config). */
  readonly amendImage?: (image: BuiltImage, platformIndex: number) => Promise<BuiltImage>;
}

/** The options of `-t` names without an image output: BuildKit's image exporter defaults. */
const DEFAULT_IMAGE_OPTIONS: ImageOutputOptions = {
  compression: "gzip",
  compressionLevel: undefined,
  forceCompression: false,
  ociMediaTypes: true,
  rewriteTimestamp: false,
  annotations: [],
  ignored: [],
};

type ImageOutput = Extract<OutputSpec, { type: "oci" | "docker" | "image" }>;

/**
 * Runs every exporter a build asked for: the filesystem ones (`local`, `tar`) from the result
 * snapshots' views, then the image ones. Outputs whose image options (compression, media types,
 * timestamps, annotations) are the same share one image, built once; each image is written to
 * its places: layouts, archives, local names and pushes. Options are checked before any work.
 */
export async function exportResult(request: ExportRequest): Promise<ExportedResult> {
  const { worker, sink, signal, results } = request;
  const imageOutputs = request.outputs.filter((o): o is ImageOutput => o.type === "oci" || o.type === "docker" || o.type === "image");
  checkOutputs(imageOutputs, request);
  for (const output of imageOutputs) {
    for (const option of output.image.ignored) {
      sink({ type: "warning", message: `Output option "${option}" has no effect in kiln: images are stored in kiln's own content store, never unpacked into a snapshotter`, locations: [], time: Date.now() });
    }
  }
  await exportFilesystems(request);
  if (imageOutputs.length === 0 && request.tags.length === 0) return { digest: undefined, config: undefined, metadata: {} };

  // Outputs with equal image options share one image; `-t` names go with the first group.
  const groups = new Map<string, { options: ImageOutputOptions; outputs: ImageOutput[] }>();
  for (const output of imageOutputs) {
    const key = JSON.stringify(output.image, (k, v: unknown) => (k === "ignored" ? undefined : v));
    const group = groups.get(key) ?? { options: output.image, outputs: [] };
    group.outputs.push(output);
    groups.set(key, group);
  }
  if (groups.size === 0) groups.set("", { options: DEFAULT_IMAGE_OPTIONS, outputs: [] });

  const variants = new LayerVariants(join(worker.root, "exporter", "layer-variants"), worker.content);
  const storeLayers = new StoreLayers(join(worker.root, "exporter", "store-layers"), worker.content);
  const layersByPlatform = await Promise.all(results.map((r) => (r.ref === null ? Promise.resolve([]) : worker.layers(r.ref))));
  let metadata: Record<string, string> | undefined;
  let first: BuiltArtifact | undefined;
  const reported: string[] = [];
  let tagsDone = false;
  for (const { options, outputs } of groups.values()) {
    const built = await reportVertex(sink, sha256(`kiln:export:image:${JSON.stringify(options)}`), "exporting layers and image config", () =>
      buildArtifact(request, options, layersByPlatform, variants, { layers: storeLayers, only: outputs.length === 0 && !request.push }),
    );
    first ??= built;
    const root = rootDescriptor(built);
    metadata ??= {
      "containerimage.digest": root.digest,
      ...(built.kind === "image" ? { "containerimage.config.digest": built.config.digest } : {}),
      "containerimage.descriptor": JSON.stringify({ mediaType: root.mediaType, digest: root.digest, size: root.size }),
    };
    const tags = tagsDone ? [] : request.tags;
    tagsDone = true;
    reported.push(...(await writeImage(request, built, outputs, tags)));
  }
  if (reported.length > 0 && metadata !== undefined) metadata["image.name"] = [...new Set(reported)].join(",");
  const digest = first === undefined ? undefined : rootDescriptor(first).digest;
  return { digest, config: first?.kind === "image" ? first.spec : undefined, metadata: metadata ?? {} };
}

/** Refuses what cannot be exported, before anything is built or written. */
function checkOutputs(outputs: readonly ImageOutput[], request: ExportRequest): void {
  const multi = request.results.length > 1;
  for (const output of outputs) {
    if (output.type === "docker" && multi) {
      throw new ExportError(
        "KILN_EXPORT_INVALID_OPTION",
        `Cannot export ${request.results.length} platforms to a docker archive: the docker exporter does not support multi-platform images (manifest lists); use type=oci or type=image`,
      );
    }
    if (output.image.rewriteTimestamp && request.epoch === undefined) {
      throw new ExportError("KILN_EXPORT_INVALID_OPTION", "Cannot use rewrite-timestamp=true: it clamps file times to SOURCE_DATE_EPOCH, which is not set (--build-arg SOURCE_DATE_EPOCH=SECONDS or the environment variable)");
    }
    const index = output.image.annotations.find((a) => a.target === "index" || a.target === "index-descriptor");
    if (index !== undefined && !multi) {
      throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use "${annotationOptionName(index)}": index annotations are not supported for a single-platform export (no index is made)`);
    }
  }
}

/** `local` and `tar` outputs: one platform's filesystem, or one subdirectory per platform (`linux_amd64`). */
async function exportFilesystems(request: ExportRequest): Promise<void> {
  const { worker, sink, signal, results } = request;
  const view = (ref: ResultRef | null) => (ref === null ? Promise.resolve(null) : worker.snapshotter.view(ref.id));
  for (const output of request.outputs) {
    if (output.type !== "local" && output.type !== "tar") continue;
    if (output.type === "local") {
      await reportVertex(sink, sha256(`kiln:export:local:${output.dest}`), `copying files to ${output.dest}`, async () => {
        if (results.length === 1) return writeLocalOutput(await view(results[0]!.ref), { dest: output.dest, signal });
        for (const r of results) await writeLocalOutput(await view(r.ref), { dest: join(output.dest, platformDirectory(r.platform)), signal });
      });
    } else {
      const dest = output.dest === "-" ? request.stdout : output.dest;
      await reportVertex(sink, sha256(`kiln:export:tar:${output.dest}`), `sending tarball${output.dest === "-" ? "" : ` to ${output.dest}`}`, async () => {
        if (results.length === 1) return writeTarOutput(await view(results[0]!.ref), { dest, signal });
        const views = await Promise.all(results.map(async (r) => ({ prefix: platformDirectory(r.platform), view: await view(r.ref) })));
        return writeTarOutputs(views, { dest, signal });
      });
    }
  }
}

/** BuildKit's directory name for a platform in multi-platform filesystem outputs: `linux_arm64`, `linux_arm_v7`. */
export function platformDirectory(platform: Platform): string {
  return formatPlatform(platform).replaceAll("/", "_");
}

/**
 * One image per platform with these options, and an index over them when there are several.
 * An image that only goes to the local store (`store.only`: `-t` names, nothing written out or
 * pushed) gets uncompressed new layers, as Docker's store keeps them (see StoreLayers).
 */
async function buildArtifact(
  request: ExportRequest,
  options: ImageOutputOptions,
  layersByPlatform: readonly Awaited<ReturnType<Worker["layers"]>>[],
  variants: LayerVariants,
  store: { readonly layers: StoreLayers; readonly only: boolean },
): Promise<BuiltArtifact> {
  const { worker, sink, signal } = request;
  const images: PlatformImage[] = [];
  for (const [i, result] of request.results.entries()) {
    const sources = layersByPlatform[i] ?? [];
    const manifestAnnotations = annotationsFor(options.annotations, "manifest", result.platform);
    const descriptorAnnotations = annotationsFor(options.annotations, "manifest-descriptor", result.platform);
    const image: BuiltImage = await buildImage({
      layers: store.only ? await store.layers.forStore(sources) : await store.layers.forExport(sources),
      image: result.image,
      content: worker.content,
      compression: store.only ? "uncompressed" : options.compression,
      ...(options.compressionLevel === undefined ? {} : { compressionLevel: options.compressionLevel }),
      forceCompression: options.forceCompression,
      ociMediaTypes: options.ociMediaTypes,
      ...(request.epoch === undefined ? {} : { epoch: request.epoch }),
      rewriteTimestamp: options.rewriteTimestamp,
      ...(manifestAnnotations === undefined ? {} : { manifestAnnotations }),
      ...(descriptorAnnotations === undefined ? {} : { descriptorAnnotations }),
      variants,
      onLayerBlob: (snapshot, blob) => (store.only ? store.layers.record(snapshot, blob) : worker.snapshotter.setBlob(snapshot, blob)),
      signal,
      onEvent: sink,
    });
    images.push({ platform: result.platform, image: request.amendImage === undefined ? image : await request.amendImage(image, i) });
  }
  if (images.length === 1) return images[0]!.image;
  const annotations = annotationsFor(options.annotations, "index");
  const descriptorAnnotations = annotationsFor(options.annotations, "index-descriptor");
  return buildImageIndex({
    images,
    content: worker.content,
    ociMediaTypes: options.ociMediaTypes,
    ...(annotations === undefined ? {} : { annotations }),
    ...(descriptorAnnotations === undefined ? {} : { descriptorAnnotations }),
  });
}

/** Writes one image to its outputs, names it locally and pushes it; returns the names to report. */
async function writeImage(request: ExportRequest, built: BuiltArtifact, outputs: readonly ImageOutput[], tags: readonly string[]): Promise<string[]> {
  const { worker, sink, signal } = request;
  const pushes: { names: readonly string[]; byDigest: boolean }[] = [];
  for (const output of outputs) {
    switch (output.type) {
      case "oci":
        await reportVertex(sink, sha256(`kiln:export:oci:${output.dest}`), `exporting to oci image format ${output.dest}`, () =>
          writeOciLayout(built, worker.content, { dest: output.dest, tar: output.tar, names: output.names, signal }),
        );
        break;
      case "docker":
        if (built.kind !== "image") throw new ExportError("KILN_EXPORT_INVALID_OPTION", "Cannot write a multi-platform image as a docker archive");
        await reportVertex(sink, sha256(`kiln:export:docker:${output.dest}`), `exporting to docker image format ${output.dest}`, () =>
          writeDockerArchive(built, worker.content, { dest: output.dest, names: output.names, signal }),
        );
        break;
      case "image":
        if (output.push) pushes.push({ names: output.names, byDigest: output.pushByDigest });
        break;
      default:
        assertNever(output);
    }
  }
  if (request.push && tags.length > 0) pushes.push({ names: tags, byDigest: false });
  // Names go to the local store too (BuildKit's image exporter names them in containerd's store),
  // except push-by-digest names, whose point is to have none.
  const names = [...tags, ...outputs.flatMap((o) => (o.type === "image" && !o.pushByDigest ? o.names : []))];
  if (names.length > 0) {
    await reportVertex(sink, sha256(`kiln:export:names:${names.join(",")}`), `naming to ${names.join(", ")}`, () => storeImage(built, worker.images, names));
  }
  const root = rootDescriptor(built);
  for (const push of pushes) {
    for (const name of push.names) {
      await reportVertex(sink, sha256(`kiln:export:push:${name}:${root.digest}`), `pushing ${name}`, async (progress) => {
        const result = await pushImageNames(built, [name], worker.registry, worker.content, {
          byDigest: push.byDigest,
          knownLocations: (digest) => request.locations.get(digest),
          signal,
          onBlob: (_repository, digest, outcome) => progress.log("stderr", `${outcome === "uploaded" ? "pushed" : outcome === "mounted" ? "mounted" : "exists"} ${digest}\n`),
          onBytes: (_repository, digest, bytes) => progress.bytes(digest, bytes),
        });
        progress.log("stderr", `pushed manifest ${pinnedName(name, result.digest)}\n`);
        // Every blob of this image is now also in that repository: later pushes may mount from it.
        const ref = parseReference(name);
        for (const d of artifactBlobs(built)) request.locations.add(d.digest, `${ref.domain}/${ref.path}`);
      });
    }
  }
  return [...names, ...pushes.flatMap((p) => p.names)];
}

/** Which repositories (`domain/path`) are known to hold a blob: a build's memory for cross-repository mounts. */
export class BlobLocations {
  readonly #byDigest = new Map<string, Set<string>>();

  add(digest: Digest, repository: string): void {
    const set = this.#byDigest.get(digest) ?? new Set<string>();
    set.add(repository);
    this.#byDigest.set(digest, set);
  }

  get(digest: Digest): readonly string[] {
    return [...(this.#byDigest.get(digest) ?? [])];
  }

  /**
   * Wraps an image resolver so that the layers and config of every image resolved from a
   * registry are recorded as being in that image's repository.
   */
  recording(resolve: (ref: string, options: ResolveImageOptions) => Promise<ResolvedImage>): (ref: string, options: ResolveImageOptions) => Promise<ResolvedImage> {
    return async (ref, options) => {
      const resolved = await resolve(ref, options);
      const parsed = parseReference(resolved.ref);
      const repository = `${parsed.domain}/${parsed.path}`;
      for (const d of [resolved.configDescriptor, ...resolved.manifest.layers]) this.add(d.digest, repository);
      return resolved;
    };
  }
}
