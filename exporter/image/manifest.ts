import { MediaTypes, type Descriptor, type Manifest } from "../../worker/oci/index.js";

/** The manifest and config media types of an image, OCI by default or Docker schema 2. */
export function imageMediaTypes(oci: boolean): { readonly manifest: string; readonly config: string } {
  return oci
    ? { manifest: MediaTypes.ociManifest, config: MediaTypes.ociConfig }
    : { manifest: MediaTypes.dockerManifest, config: MediaTypes.dockerConfig };
}

/**
 * An image manifest: schema 2 with its own media type, the config descriptor and the layer
 * descriptors base first. Layer annotations are kept only for OCI manifests (Docker schema 2 has
 * none), as BuildKit does. `annotations` (BuildKit's `annotation-manifest.*`) go on the manifest
 * itself; Docker schema 2 has no field for them, but registries and tools keep them, as with BuildKit.
 */
export function buildManifest(config: Descriptor, layers: readonly Descriptor[], oci: boolean, annotations?: Readonly<Record<string, string>>): Manifest {
  return {
    schemaVersion: 2,
    mediaType: imageMediaTypes(oci).manifest,
    config: plainDescriptor(config, true),
    layers: layers.map((layer) => plainDescriptor(layer, oci)),
    ...(annotations === undefined || Object.keys(annotations).length === 0 ? {} : { annotations }),
  };
}

/** The bytes stored for a manifest: compact JSON. */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifest), "utf8");
}

/** mediaType, digest, size (and annotations when wanted) in that order, for stable bytes. */
function plainDescriptor(descriptor: Descriptor, keepAnnotations: boolean): Descriptor {
  const annotations = descriptor.annotations;
  return {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(keepAnnotations && annotations !== undefined && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}
