import type { Digest, ImageSpec, Platform } from "../../solver/llb/index.js";
import type { ContentStore } from "../content/content-store.js";
import type { LocalImages } from "../content/image-index.js";
import { formatReference, parseReference, withDigest, type Reference } from "../oci/index.js";
import type { RegistryClient } from "../registry/client.js";
import { parseManifestDocument, selectManifest } from "../registry/resolve.js";
import type { ResolvedImage, ResolveImageOptions } from "../worker.js";

/** Turns an image reference into a ResolvedImage for one platform. */
export type ImageResolver = (ref: string, options: ResolveImageOptions) => Promise<ResolvedImage>;

export interface ImageResolverDeps {
  readonly content: ContentStore;
  readonly images: LocalImages;
  readonly registry: RegistryClient;
}

/**
 * An ImageResolver. With `pull: "missing"` (the default) it looks locally first: a digest-pinned
 * reference whose manifest (or index, then the platform's manifest) and config are already in the
 * content store needs no network; otherwise the normalised name (`docker.io/library/busybox:latest`)
 * is looked up in the local image store. What is not found locally, and everything with
 * `pull: "always"`, is resolved through the registry, and the index, manifest and config blobs
 * are stored in the content store (layers are left to the image source op). The returned `ref`
 * is the canonical reference pinned by the platform manifest's digest.
 */
export function createImageResolver(deps: ImageResolverDeps): ImageResolver {
  return async (ref, options) => {
    const parsed = parseReference(ref);
    if (options.pull !== "always") {
      if (parsed.digest !== undefined) {
        const found = await fromContent(deps.content, parsed, parsed.digest, options.platform);
        if (found !== undefined) return found;
      }
      const named = await deps.images.get(formatReference(parsed));
      if (named !== undefined) {
        const found = await fromContent(deps.content, parsed, named.digest, options.platform);
        if (found !== undefined) return found;
      }
    }
    const resolved = await deps.registry.resolve(parsed, options.platform, options.signal);
    if (resolved.indexDigest !== undefined && resolved.indexBytes !== undefined) {
      await deps.content.writeBytes(resolved.indexBytes, { expected: resolved.indexDigest });
    }
    await deps.content.writeBytes(resolved.manifestBytes, { expected: resolved.manifestDigest });
    await deps.content.writeBytes(resolved.configBytes, { expected: resolved.configDescriptor.digest });
    return {
      ref: formatReference(resolved.ref),
      manifestDigest: resolved.manifestDigest,
      manifest: resolved.manifest,
      config: resolved.config,
      configDescriptor: resolved.configDescriptor,
      from: "registry",
    };
  };
}

/**
 * The image `digest` names in the content store (a manifest, or an index and the platform's
 * manifest in it), or undefined when any of manifest or config is missing. A platform the index
 * lacks is an error (PlatformNotFoundError), not a reason to ask the registry.
 */
async function fromContent(content: ContentStore, ref: Reference, digest: Digest, platform: Platform): Promise<ResolvedImage | undefined> {
  if (!(await content.has(digest))) return undefined;
  const what = `manifest "${digest}" in the local content store`;
  let doc = parseManifestDocument(await content.readBytes(digest), undefined, what);
  let manifestDigest = digest;
  if (doc.kind === "index") {
    manifestDigest = selectManifest(doc.index, platform, formatReference(ref)).digest;
    if (!(await content.has(manifestDigest))) return undefined;
    doc = parseManifestDocument(await content.readBytes(manifestDigest), undefined, `manifest "${manifestDigest}" in the local content store`);
    if (doc.kind !== "manifest") return undefined;
  }
  const manifest = doc.manifest;
  if (!(await content.has(manifest.config.digest))) return undefined;
  const config = await content.readJson<ImageSpec>(manifest.config.digest);
  return {
    ref: formatReference(withDigest(ref, manifestDigest)),
    manifestDigest,
    manifest,
    config,
    configDescriptor: manifest.config,
    from: "local",
  };
}
