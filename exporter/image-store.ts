import type { LocalImages } from "../worker/content/image-index.js";
import { formatReference, parseReference } from "../worker/oci/index.js";
import { rootDescriptor, type BuiltArtifact } from "./image/build-index.js";

/**
 * Names an image in kiln's local image store: each name, normalised (`busybox` →
 * `docker.io/library/busybox:latest`), points at the image's manifest (or a multi-platform
 * image's index, from which FROM picks the platform), whose blobs `buildImage`
 * already put in the content store that `images` indexes. An existing name is moved to this image.
 * Throws ReferenceError for a name that is not a valid reference, before any name is set.
 */
export async function storeImage(image: BuiltArtifact, images: LocalImages, names: readonly string[]): Promise<void> {
  const normalised = [...new Set(names.map((name) => formatReference(parseReference(name))))];
  const root = rootDescriptor(image);
  const descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size };
  for (const name of normalised) await images.set(name, descriptor);
}
