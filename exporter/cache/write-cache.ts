import { assertNever, type Digest } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import type { Descriptor } from "../../worker/oci/index.js";
import type { RegistryClient } from "../../worker/registry/client.js";
import type { Snapshotter } from "../../worker/snapshotter/types.js";
import type { SolverRecordData } from "./cache-config.js";
import { packCacheMounts } from "./cache-mounts.js";
import type { CacheExportSpec } from "./cache-spec.js";
import { collectCache } from "./collect-cache.js";
import { writeLocalCache } from "./local-cache.js";
import { pushRegistryCache } from "./registry-cache.js";

export interface WriteCacheOptions {
  readonly stateRoot: string;
  readonly content: ContentStore;
  readonly snapshotter: Snapshotter;
  readonly registry: RegistryClient;
  /** The records chosen for the spec's mode (the solver's selectCacheExport + exportCacheManifest). */
  readonly records: readonly { readonly key: Digest; readonly record: SolverRecordData }[];
  /** The ids of the build's cache mounts, shipped when the spec asks for `cache-mounts=true`. */
  readonly cacheMountIds: readonly string[];
  readonly signal?: AbortSignal;
  /** Told about each blob a registry export sends or finds there. */
  readonly onBlob?: (descriptor: Descriptor, outcome: string) => void;
}

/** What an export wrote: the cache manifest's descriptor, and how many records and cache mounts it carries. */
export interface WrittenCache {
  readonly manifest: Descriptor;
  readonly records: number;
  readonly mounts: number;
}

/**
 * Writes a build's cache to a local directory or a registry (`inline` goes through the image
 * exporter instead: see addInlineCache). Layer blobs are made for results that have none yet.
 */
export async function writeCache(spec: Exclude<CacheExportSpec, { kind: "inline" }>, options: WriteCacheOptions): Promise<WrittenCache> {
  const signalOption = options.signal === undefined ? {} : { signal: options.signal };
  const mounts = spec.cacheMounts ? await packCacheMounts(options.stateRoot, options.content, options.cacheMountIds, options.signal) : [];
  const cache = await collectCache({ content: options.content, snapshotter: options.snapshotter, records: options.records, mounts, ...signalOption });
  const counts = { records: cache.config.records.length, mounts: mounts.length };
  switch (spec.kind) {
    case "local":
      return { manifest: await writeLocalCache(spec.dest, options.content, cache, options.signal), ...counts };
    case "registry": {
      const pushed = await pushRegistryCache(options.registry, options.content, spec.ref, cache, {
        ...signalOption,
        ...(options.onBlob === undefined ? {} : { onBlob: options.onBlob }),
      });
      return { manifest: pushed.manifest, ...counts };
    }
    default:
      return assertNever(spec, "cache export");
  }
}
