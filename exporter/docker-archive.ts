import type { ContentStore } from "../worker/content/content-store.js";
import { familiarReference, MediaTypes, parseReference } from "../worker/oci/index.js";
import type { BuiltImage } from "./image/build-image.js";
import { blobPath, writeLayoutTar } from "./layout-files.js";
import { layoutFiles, layoutIndexEntries } from "./oci-layout.js";

export interface DockerArchiveOptions {
  /** The tar file to write (replaced atomically). */
  readonly dest: string;
  /** Image names; those with a tag become RepoTags in Docker's short form (`busybox:latest`). */
  readonly names?: readonly string[];
  readonly signal?: AbortSignal;
}

/** One entry of a docker archive's manifest.json, as `docker save` writes and `docker load` reads it. */
export interface DockerArchiveManifestEntry {
  readonly Config: string;
  readonly RepoTags: readonly string[];
  readonly Layers: readonly string[];
}

/**
 * Writes an image as a tar that `docker load` accepts, the way BuildKit's docker exporter does:
 * an OCI image layout (so OCI tools read it too) plus Docker's `manifest.json` whose Config and
 * Layers point at the same `blobs/sha256/…` files. `docker load` decompresses gzip layers itself,
 * so layers are written as stored. Use Docker media types (`ociMediaTypes: false` when building)
 * for the widest compatibility, as BuildKit does by default for this exporter.
 */
export async function writeDockerArchive(image: BuiltImage, content: ContentStore, options: DockerArchiveOptions): Promise<void> {
  const names = options.names ?? [];
  const entry = dockerManifestEntry(image, names);
  const index = { schemaVersion: 2 as const, mediaType: MediaTypes.ociIndex, manifests: layoutIndexEntries(image.manifest, names) };
  const manifestJson = { kind: "bytes" as const, path: "manifest.json", bytes: Buffer.from(JSON.stringify([entry])) };
  await writeLayoutTar(layoutFiles(image, index, [manifestJson]), content, options.dest, options.signal);
}

/** manifest.json's entry for an image: config and layer paths inside the archive, and its tags. */
export function dockerManifestEntry(image: BuiltImage, names: readonly string[]): DockerArchiveManifestEntry {
  const repoTags = names.flatMap((name) => {
    const ref = parseReference(name);
    if (ref.tag === undefined) return [];
    return [familiarReference({ domain: ref.domain, path: ref.path, tag: ref.tag })];
  });
  return {
    Config: blobPath(image.config.digest),
    RepoTags: [...new Set(repoTags)],
    Layers: image.layers.map((layer) => blobPath(layer.digest)),
  };
}
