import type { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes, type Descriptor, type Manifest } from "../../worker/oci/index.js";
import { CACHE_CONFIG_MEDIA_TYPE, CacheImportError, parseCacheConfig, type CacheConfig } from "./cache-config.js";
import type { CollectedCache } from "./collect-cache.js";

/** A cache as an OCI artifact in the content store: a manifest whose config is the cache config. */
export interface CacheArtifact {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

/**
 * Writes the config and an OCI image manifest for a collected cache into `content`: the config
 * blob has media type `application/vnd.kiln.cache.config.v1+json` (also the manifest's
 * `artifactType`), and the layers are every blob the cache names (result layers and cache
 * mounts). A plain registry stores it like any image; nothing can run it.
 */
export async function writeCacheArtifact(content: ContentStore, cache: CollectedCache): Promise<CacheArtifact> {
  const configBlob = await content.writeBytes(Buffer.from(JSON.stringify(cache.config)));
  const config: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: configBlob.digest, size: configBlob.size };
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: CACHE_CONFIG_MEDIA_TYPE,
    config,
    layers: cache.blobs,
  };
  const manifestBlob = await content.writeBytes(Buffer.from(JSON.stringify(manifest)));
  return { manifest: { mediaType: MediaTypes.ociManifest, digest: manifestBlob.digest, size: manifestBlob.size }, config, layers: cache.blobs };
}

/** Whether a manifest is a kiln cache artifact (its config is a cache config). */
export function isCacheManifest(manifest: Manifest): boolean {
  return manifest.config.mediaType === CACHE_CONFIG_MEDIA_TYPE;
}

/** Parses a cache config blob's bytes; `what` names the cache in errors. */
export function readCacheConfig(bytes: Uint8Array, what: string): CacheConfig {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new CacheImportError(`Cannot import cache ${what}: its config is not JSON`, { cause: error });
  }
  return parseCacheConfig(value, what);
}
