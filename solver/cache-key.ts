import { canonicalJson, sha256, type Digest } from "./llb/index.js";

/**
 * How one input contributes to a cache key:
 * - `key`: the input vertex's own cache key and which of its outputs is used, so the dependent
 *   changes whenever anything upstream of it changes;
 * - `checksum`: a content checksum the runner computed over the input's result (the files a COPY
 *   selects), so the dependent changes only when those contents change.
 */
export type CacheKeyDep =
  | { readonly kind: "key"; readonly key: Digest; readonly output: number }
  | { readonly kind: "checksum"; readonly checksum: Digest };

/**
 * Everything a cache key is computed from. Stored beside each cache record so that a later miss
 * can say which part differed (see `explainCacheKey`).
 */
export interface CacheKeyInputs {
  /** The runner's `CacheMap.digest`: the op digest, a resolved image digest, a context checksum. */
  readonly digest: Digest;
  /** One entry per op input, in input order. */
  readonly deps: readonly CacheKeyDep[];
}

/**
 * The cache key of a vertex:
 *
 *     sha256(canonicalJson({ digest, deps: [ { kind, key, output } | { kind, checksum }, … ] }))
 *
 * `digest` comes from the runner's cache map, not from the Definition, so an image source pinned
 * by tag and by digest get the same key once resolved, and names, descriptions and Dockerfile
 * ranges (never part of an op digest) never reach a key. Inputs enter by their own keys,
 * recursively, so a key identifies the whole history that produced a result, while op digests in
 * the Definition only identify the op. Keys are stable across processes and versions of kiln that
 * keep this function; change it and every cache entry misses (which is safe).
 */
export function computeCacheKey(inputs: CacheKeyInputs): Digest {
  return sha256(canonicalJson({ digest: inputs.digest, deps: inputs.deps }));
}

/** Why two key inputs differ, most specific first. Empty when they are the same. */
export type CacheKeyDifference =
  | { readonly kind: "op"; readonly before: Digest; readonly after: Digest }
  | { readonly kind: "input-count"; readonly before: number; readonly after: number }
  | { readonly kind: "input"; readonly index: number; readonly before: CacheKeyDep; readonly after: CacheKeyDep };

/**
 * Compares the inputs of an earlier key with the current ones and lists what changed: the op's
 * own digest (a changed command, a new base image digest, a changed context), or which input
 * (its key, output or content checksum).
 */
export function explainCacheKey(before: CacheKeyInputs, after: CacheKeyInputs): readonly CacheKeyDifference[] {
  const differences: CacheKeyDifference[] = [];
  if (before.digest !== after.digest) differences.push({ kind: "op", before: before.digest, after: after.digest });
  if (before.deps.length !== after.deps.length) {
    differences.push({ kind: "input-count", before: before.deps.length, after: after.deps.length });
  }
  const shared = Math.min(before.deps.length, after.deps.length);
  for (let index = 0; index < shared; index++) {
    const b = before.deps[index] as CacheKeyDep;
    const a = after.deps[index] as CacheKeyDep;
    if (canonicalJson(a) !== canonicalJson(b)) differences.push({ kind: "input", index, before: b, after: a });
  }
  return differences;
}
