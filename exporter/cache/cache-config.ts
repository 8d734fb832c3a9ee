import { isDigest, KilnError, type Digest } from "../../solver/llb/index.js";
import type { ResultRef } from "../../solver/op.js";
import type { Descriptor } from "../../worker/oci/index.js";

/** The media type of a kiln cache config blob (the config of a cache manifest). */
export const CACHE_CONFIG_MEDIA_TYPE = "application/vnd.kiln.cache.config.v1+json";
/** The image config field that carries an inline cache (`--export-cache type=inline`). */
export const INLINE_CACHE_KEY = "kiln.cache.v1";

/**
 * A cache as shipped: result layers, records naming them, and cache mounts. The same value is the
 * config blob of a local or registry cache and the `kiln.cache.v1` field of an image config
 * (inline), where every blob is one of the image's own layers. See README.md.
 */
export interface CacheConfig {
  readonly version: 1;
  /** Result layers; a chain is a top layer and its `parent`s. Parents come before children. */
  readonly layers: readonly CacheLayer[];
  readonly records: readonly CacheConfigRecord[];
  /** `RUN --mount=type=cache` directories, when exported with `cache-mounts=true`. */
  readonly mounts: readonly CacheMountEntry[];
}

/** One snapshot's own changes. */
export interface CacheLayer {
  /** The layer blob; absent for a snapshot without changes (an empty layer is not shipped). */
  readonly blob?: Descriptor;
  /** sha256 of the uncompressed tar: with the parents' it makes the chain id a snapshot is found by. */
  readonly diffId: Digest;
  /** The layer below, or -1 for a base layer. */
  readonly parent: number;
}

/** A solver cache record with each result named by its top layer (an index into `layers`). */
export interface CacheConfigRecord {
  readonly key: Digest;
  readonly results: readonly number[];
  readonly created: number;
  readonly vertexName?: string;
  readonly type?: string;
  /** The solver's key inputs (for `--explain-cache`), carried as they are. */
  readonly keyInputs?: unknown;
  readonly canonicalKey?: Digest;
}

/** A cache mount's directory as a gzip tar of its contents, with the directory's own mode and owner. */
export interface CacheMountEntry {
  readonly id: string;
  readonly blob: Descriptor;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * The record shape the solver's cache store keeps (solver/cache-store.ts `CacheRecord`), repeated
 * here as a structural type because the exporter may not import the solver's cache modules.
 */
export interface SolverRecordData {
  readonly results: readonly ResultRef[];
  readonly created: number;
  readonly lastUsed: number;
  readonly vertexName?: string;
  readonly type?: string;
  readonly keyInputs?: unknown;
  readonly canonicalKey?: Digest;
}

/** An imported cache cannot be read: its layout, manifest or config is missing or invalid. */
export class CacheImportError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_CACHE_IMPORT", message, options);
  }
}

/** Parses and checks a cache config (indexes in range, parents before children); `what` names it in errors. */
export function parseCacheConfig(value: unknown, what: string): CacheConfig {
  const fail = (why: string): never => {
    throw new CacheImportError(`Cannot import cache ${what}: ${why}`);
  };
  if (typeof value !== "object" || value === null) return fail("its config is not a JSON object");
  const v = value as Record<string, unknown>;
  if (v["version"] !== 1) return fail(`its config has version ${JSON.stringify(v["version"])}, this kiln reads 1`);
  const layers = v["layers"];
  const records = v["records"];
  const mounts = v["mounts"] ?? [];
  if (!Array.isArray(layers) || !Array.isArray(records) || !Array.isArray(mounts)) return fail("its config lacks layers, records or mounts lists");
  layers.forEach((layer: unknown, index) => {
    const l = layer as Record<string, unknown> | null;
    if (l === null || typeof l !== "object" || !isDigestValue(l["diffId"]) || typeof l["parent"] !== "number") return fail(`layer ${index} is malformed`);
    if (!Number.isInteger(l["parent"]) || (l["parent"] as number) < -1 || (l["parent"] as number) >= index) return fail(`layer ${index} has parent ${String(l["parent"])}, not an earlier layer`);
    if (l["blob"] !== undefined && !isDescriptor(l["blob"])) return fail(`layer ${index} has a malformed blob descriptor`);
  });
  records.forEach((record: unknown, index) => {
    const r = record as Record<string, unknown> | null;
    if (r === null || typeof r !== "object" || !isDigestValue(r["key"]) || typeof r["created"] !== "number" || !Array.isArray(r["results"])) return fail(`record ${index} is malformed`);
    for (const result of r["results"] as unknown[]) {
      if (!Number.isInteger(result) || (result as number) < 0 || (result as number) >= layers.length) return fail(`record ${index} names layer ${String(result)}, which does not exist`);
    }
    if (r["canonicalKey"] !== undefined && !isDigestValue(r["canonicalKey"])) return fail(`record ${index} has a malformed canonical key`);
  });
  mounts.forEach((mount: unknown, index) => {
    const m = mount as Record<string, unknown> | null;
    if (m === null || typeof m !== "object" || typeof m["id"] !== "string" || !isDescriptor(m["blob"])) return fail(`cache mount ${index} is malformed`);
    if (![m["mode"], m["uid"], m["gid"]].every((n) => Number.isInteger(n))) return fail(`cache mount ${index} lacks its mode or owner`);
  });
  return { version: 1, layers: layers as CacheLayer[], records: records as CacheConfigRecord[], mounts: mounts as CacheMountEntry[] };
}

function isDescriptor(value: unknown): value is Descriptor {
  if (typeof value !== "object" || value === null) return false;
  const d = value as Record<string, unknown>;
  return typeof d["mediaType"] === "string" && isDigestValue(d["digest"]) && typeof d["size"] === "number" && Number.isInteger(d["size"]) && (d["size"] as number) >= 0;
}

function isDigestValue(value: unknown): value is Digest {
  return typeof value === "string" && isDigest(value);
}
