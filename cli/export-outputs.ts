import type { Writable } from "node:stream";
import {
  buildImage, pinnedName, pushImageNames, storeImage, writeDockerArchive, writeLocalOutput, writeOciLayout, writeTarOutput, type BuiltImage,
} from "../exporter/index.js";
import { reportVertex, type ProgressSink } from "../solver/index.js";
import { assertNever, sha256, type Digest, type ImageMetadata, type ImageSpec } from "../solver/llb/index.js";
import type { ResultRef } from "../solver/op.js";
import { parseReference, type ResolvedImage, type ResolveImageOptions, type Worker } from "../worker/index.js";
import type { OutputSpec } from "./options/output.js";

/** What the exporters made of a build result. */
export interface ExportedResult {
  readonly digest: Digest | undefined;
  readonly config: ImageSpec | undefined;
  /** BuildKit's exporter response keys (`containerimage.digest`, `image.name`…); `containerimage.descriptor` is JSON text. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Everything the exporters need from one build. */
export interface ExportRequest {
  readonly worker: Worker;
  /** The target's result (null: an empty filesystem). */
  readonly ref: ResultRef | null;
  readonly image: ImageMetadata;
  readonly outputs: readonly OutputSpec[];
  /** `-t` names: stored in the local image store, and pushed when `push` is set. */
  readonly tags: readonly string[];
  /** `--push`: push every `-t` name. */
  readonly push: boolean;
  /** Which repositories hold which blobs (from the base images resolved while lowering). */
  readonly locations: BlobLocations;
  /** Where `type=tar,dest=-` writes: standard output for the CLI. */
  readonly stdout: Writable;
  readonly sink: ProgressSink;
  readonly signal: AbortSignal;
}

/**
 * Runs every exporter a build asked for: the filesystem ones (`local`, `tar`) from the result
 * snapshot's view, then, when an image is wanted (`oci`, `docker`, `image` outputs or `-t` names),
 * one image built once and written to each place: layouts, archives, local names and pushes.
 */
export async function exportResult(request: ExportRequest): Promise<ExportedResult> {
  const { worker, sink, signal } = request;
  for (const output of request.outputs) {
    if (output.type !== "local" && output.type !== "tar") continue;
    const view = request.ref === null ? null : await worker.snapshotter.view(request.ref.id);
    if (output.type === "local") {
      await reportVertex(sink, sha256(`kiln:export:local:${output.dest}`), `copying files to ${output.dest}`, () => writeLocalOutput(view, { dest: output.dest, signal }));
    } else {
      const dest = output.dest === "-" ? request.stdout : output.dest;
      await reportVertex(sink, sha256(`kiln:export:tar:${output.dest}`), `sending tarball${output.dest === "-" ? "" : ` to ${output.dest}`}`, () => writeTarOutput(view, { dest, signal }));
    }
  }
  const imageOutputs = request.outputs.filter((o) => o.type === "oci" || o.type === "docker" || o.type === "image");
  if (imageOutputs.length === 0 && request.tags.length === 0) return { digest: undefined, config: undefined, metadata: {} };

  const layers = request.ref === null ? [] : await worker.layers(request.ref);
  // A docker archive carries Docker's media types, as BuildKit's docker exporter writes them.
  const ociMediaTypes = !imageOutputs.some((o) => o.type === "docker");
  const built: BuiltImage = await reportVertex(sink, sha256("kiln:export:image"), "exporting layers and image config", () =>
    buildImage({
      ociMediaTypes,
      layers,
      image: request.image,
      content: worker.content,
      onLayerBlob: (snapshot, blob) => worker.snapshotter.setBlob(snapshot, blob),
      signal,
      onEvent: sink,
    }),
  );
  const metadata: Record<string, string> = {
    "containerimage.digest": built.manifest.digest,
    "containerimage.config.digest": built.config.digest,
    "containerimage.descriptor": JSON.stringify({ mediaType: built.manifest.mediaType, digest: built.manifest.digest, size: built.manifest.size }),
  };
  const pushes: { names: readonly string[]; byDigest: boolean }[] = [];
  for (const output of imageOutputs) {
    switch (output.type) {
      case "oci":
        await reportVertex(sink, sha256(`kiln:export:oci:${output.dest}`), `exporting to oci image format ${output.dest}`, () =>
          writeOciLayout(built, worker.content, { dest: output.dest, tar: output.tar, names: output.names, signal }),
        );
        break;
      case "docker":
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
  if (request.push && request.tags.length > 0) pushes.push({ names: request.tags, byDigest: false });
  // Names go to the local store too (BuildKit's image exporter names them in containerd's store),
  // except push-by-digest names, whose point is to have none.
  const names = [...request.tags, ...imageOutputs.flatMap((o) => (o.type === "image" && !o.pushByDigest ? o.names : []))];
  if (names.length > 0) {
    await reportVertex(sink, sha256(`kiln:export:names:${names.join(",")}`), `naming to ${names.join(", ")}`, () => storeImage(built, worker.images, names));
  }
  const pushed = pushes.flatMap((p) => p.names);
  for (const push of pushes) {
    for (const name of push.names) {
      await reportVertex(sink, sha256(`kiln:export:push:${name}:${built.manifest.digest}`), `pushing ${name}`, async (progress) => {
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
        for (const d of [built.config, ...built.layers]) request.locations.add(d.digest, `${ref.domain}/${ref.path}`);
      });
    }
  }
  const reported = [...new Set([...names, ...pushed])];
  if (reported.length > 0) metadata["image.name"] = reported.join(",");
  return { digest: built.manifest.digest, config: built.spec, metadata };
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
