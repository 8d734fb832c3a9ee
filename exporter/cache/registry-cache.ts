import type { Platform } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import { formatReference, parseReference, withDigest, type Descriptor, type Manifest, type Reference } from "../../worker/oci/index.js";
import type { RegistryClient } from "../../worker/registry/client.js";
import { pushImage, type PushResult } from "../../worker/registry/push.js";
import { selectManifest } from "../../worker/registry/resolve.js";
import { isCacheManifest, readCacheConfig, writeCacheArtifact } from "./cache-artifact.js";
import { CacheImportError, INLINE_CACHE_KEY, parseCacheConfig, type CacheConfig } from "./cache-config.js";
import type { CollectedCache } from "./collect-cache.js";
import type { BlobSource } from "./imported-cache.js";

/**
 * Pushes a cache to `ref` as an OCI artifact (see writeCacheArtifact): every blob first, then the
 * manifest, tagged with `ref`'s tag (default `latest`). Blobs the repository has are not sent again.
 */
export async function pushRegistryCache(
  registry: RegistryClient,
  content: ContentStore,
  ref: string,
  cache: CollectedCache,
  options: { readonly signal?: AbortSignal; readonly onBlob?: (descriptor: Descriptor, outcome: string) => void } = {},
): Promise<{ readonly manifest: Descriptor; readonly push: PushResult }> {
  const target = parseReference(ref);
  const artifact = await writeCacheArtifact(content, cache);
  const push = await pushImage(registry, content, target, {
    blobs: [artifact.config, ...artifact.layers],
    manifests: [artifact.manifest],
    tags: [target.tag ?? "latest"],
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onBlob === undefined ? {} : { onBlob: options.onBlob }),
  });
  return { manifest: artifact.manifest, push };
}

/**
 * Reads the cache `ref` names: a kiln cache artifact (pushed by `--export-cache type=registry`),
 * or an image whose config carries an inline cache (`type=inline`), whose layers are then the
 * cache's blobs. An index is resolved for `platform` first. Blobs are pulled from `ref`'s
 * repository when a build needs them, verified by digest.
 */
export async function readRegistryCache(
  registry: RegistryClient,
  ref: string,
  platform: Platform,
  signal?: AbortSignal,
): Promise<{ config: CacheConfig; blobs: BlobSource }> {
  const reference = parseReference(ref);
  const what = `"${formatReference(reference)}"`;
  let fetched = await registry.fetchManifest(reference, signal);
  if (fetched.kind === "index") fetched = await registry.fetchManifest(withDigest(reference, selectManifest(fetched.index, platform, formatReference(reference)).digest), signal);
  if (fetched.kind !== "manifest") throw new CacheImportError(`Cannot import cache ${what}: it names an index of indexes`);
  const manifest: Manifest = fetched.manifest;
  const bytes = await registry.fetchBlobBytes(reference, manifest.config, signal);
  const config = isCacheManifest(manifest) ? readCacheConfig(bytes, what) : inlineConfig(bytes, what);
  return { config, blobs: registryBlobs(registry, reference) };
}

/** The inline cache of an image config, or a CacheImportError saying the image has none. */
function inlineConfig(bytes: Buffer, what: string): CacheConfig {
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new CacheImportError(`Cannot import cache ${what}: its config is not JSON`, { cause: error });
  }
  const inline = spec[INLINE_CACHE_KEY];
  if (inline === undefined) {
    throw new CacheImportError(`Cannot import cache ${what}: it is an image without an inline cache (build it with --export-cache type=inline) and not a kiln cache`);
  }
  return parseCacheConfig(inline, what);
}

function registryBlobs(registry: RegistryClient, reference: Reference): BlobSource {
  return {
    name: `registry cache "${formatReference(reference)}"`,
    has: async () => true,
    async fetch(descriptor, content, signal) {
      await registry.pullBlob(reference, descriptor, content, signal === undefined ? {} : { signal });
    },
  };
}
