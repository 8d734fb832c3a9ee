import { normalizePlatform, type Platform } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes, type Descriptor, type ImageIndex } from "../../worker/oci/index.js";
import type { BuiltImage } from "./build-image.js";

/** An image of one platform inside a multi-platform image. */
export interface PlatformImage {
  readonly platform: Platform;
  readonly image: BuiltImage;
}

/** A multi-platform image in the content store: an index with one manifest per platform. */
export interface BuiltIndex {
  readonly kind: "index";
  /** The index's descriptor (with the `descriptorAnnotations` asked for). */
  readonly index: Descriptor;
  /** The platform images in index order. */
  readonly images: readonly PlatformImage[];
}

/** An image or a multi-platform image: what the outputs write, store and push. */
export type BuiltArtifact = BuiltImage | BuiltIndex;

export interface BuildIndexInput {
  readonly images: readonly PlatformImage[];
  readonly content: ContentStore;
  /** Default true: an OCI index; false: a Docker manifest list. */
  readonly ociMediaTypes?: boolean;
  /** Annotations of the index itself (`annotation-index.*`). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Annotations of the returned index descriptor (`annotation-index-descriptor.*`): a layout's index.json entry. */
  readonly descriptorAnnotations?: Readonly<Record<string, string>>;
}

/**
 * Writes an index (OCI, or a Docker manifest list) over platform images already in the content
 * store: one entry per image in the order given, with its media type, digest, size, the
 * image's descriptor annotations (`annotation-manifest-descriptor.*`) and its platform
 * (architecture, os, variant, as Go's encoder orders them). The same images and annotations give
 * the same index digest.
 */
export async function buildImageIndex(input: BuildIndexInput): Promise<BuiltIndex> {
  const oci = input.ociMediaTypes ?? true;
  const mediaType = oci ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
  const manifests: Descriptor[] = input.images.map(({ platform, image }) => {
    const p = normalizePlatform(platform);
    const annotations = image.manifest.annotations;
    return {
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      ...(annotations === undefined ? {} : { annotations }),
      platform: { architecture: p.architecture, os: p.os, ...(p.variant === undefined ? {} : { variant: p.variant }) },
    };
  });
  const annotations = input.annotations;
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests,
    ...(annotations === undefined || Object.keys(annotations).length === 0 ? {} : { annotations }),
  };
  const blob = await input.content.writeBytes(Buffer.from(JSON.stringify(index), "utf8"));
  const descriptorAnnotations = input.descriptorAnnotations;
  return {
    kind: "index",
    index: {
      mediaType,
      digest: blob.digest,
      size: blob.size,
      ...(descriptorAnnotations === undefined || Object.keys(descriptorAnnotations).length === 0 ? {} : { annotations: descriptorAnnotations }),
    },
    images: input.images,
  };
}

/** The top descriptor of an artifact: the manifest of an image, the index of a multi-platform one. */
export function rootDescriptor(artifact: BuiltArtifact): Descriptor {
  return artifact.kind === "image" ? artifact.manifest : artifact.index;
}

/** The manifests of an artifact in push order: every platform manifest, then the index. */
export function artifactManifests(artifact: BuiltArtifact): Descriptor[] {
  return artifact.kind === "image" ? [artifact.manifest] : [...artifact.images.map((i) => i.image.manifest), artifact.index];
}

/** The config and layer blobs of an artifact, each once. */
export function artifactBlobs(artifact: BuiltArtifact): Descriptor[] {
  const images = artifact.kind === "image" ? [artifact] : artifact.images.map((i) => i.image);
  const blobs = new Map<string, Descriptor>();
  for (const image of images) for (const d of [image.config, ...image.layers]) if (!blobs.has(d.digest)) blobs.set(d.digest, d);
  return [...blobs.values()];
}
