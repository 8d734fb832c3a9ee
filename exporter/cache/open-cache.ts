import { assertNever, type Platform } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import type { RegistryClient } from "../../worker/registry/client.js";
import type { Snapshotter } from "../../worker/snapshotter/types.js";
import { restoreCacheMounts } from "./cache-mounts.js";
import type { CacheImportSpec } from "./cache-spec.js";
import { ImportedCache } from "./imported-cache.js";
import { readLocalCache } from "./local-cache.js";
import { readRegistryCache } from "./registry-cache.js";

export interface OpenCacheOptions {
  readonly stateRoot: string;
  readonly content: ContentStore;
  readonly snapshotter: Snapshotter;
  readonly registry: RegistryClient;
  readonly platform: Platform;
  readonly signal?: AbortSignal;
  readonly onWarning?: (message: string) => void;
}

/**
 * Opens an imported cache for one build: reads its config (verified), restores the cache mounts
 * it carries that this root lacks, and returns it as a cache source for the solver. Layer blobs
 * are fetched later, only for the records the build uses.
 */
export async function openImportedCache(spec: CacheImportSpec, options: OpenCacheOptions): Promise<ImportedCache> {
  let opened;
  switch (spec.kind) {
    case "local":
      opened = await readLocalCache(spec.src);
      break;
    case "registry":
      opened = await readRegistryCache(options.registry, spec.ref, options.platform, options.signal);
      break;
    default:
      return assertNever(spec, "cache import");
  }
  const { config, blobs } = opened;
  await restoreCacheMounts(options.stateRoot, options.content, config.mounts, (entry) => blobs.fetch(entry.blob, options.content, options.signal), options.signal);
  return new ImportedCache({
    config,
    blobs,
    content: options.content,
    snapshotter: options.snapshotter,
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  });
}
