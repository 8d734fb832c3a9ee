import type { Digest, Op, OpInput, OpMetadata } from "./llb/index.js";
import type { VertexProgress } from "./progress.js";

/**
 * The port between the solver and whatever runs ops (the worker; fake arithmetic ops in the
 * solver's own tests). The solver knows vertices, cache keys and results; nothing else.
 */

/**
 * A result: an immutable, serializable reference to what an op produced (for the worker, a
 * committed snapshot id). Results are recorded in the cache store, so `id` must stay meaningful
 * across processes for as long as the thing it names exists.
 */
export interface ResultRef {
  readonly id: string;
}

/** The vertex a runner is asked for: its op, digest, metadata and inputs (by digest and output). */
export interface SolverVertex {
  readonly digest: Digest;
  readonly op: Op;
  readonly metadata: OpMetadata;
  readonly inputs: readonly OpInput[];
}

/** Computes a content checksum of the part of an input result that an op reads. */
export type ContentChecksum = (input: ResultRef, signal: AbortSignal) => Promise<Digest>;

/**
 * How a vertex contributes to cache keys. `digest` covers what the op computes apart from its
 * inputs' identities: for most ops the op digest itself; for an image source, the resolved
 * manifest digest; for a local source, the checksum of the selected files. `deps` has one entry
 * per input, in input order: by default an input contributes its own cache key; with
 * `contentChecksum` it contributes the checksum of just what this op selects from it (so a COPY
 * is not invalidated by a file it does not copy).
 */
export interface CacheMap {
  readonly digest: Digest;
  readonly deps: readonly CacheDep[];
  /** Optional detail behind `digest`, remembered so a later miss can say what changed (`--explain-cache`). */
  readonly explain?: CacheMapExplain;
}

/**
 * What a runner may report about its `CacheMap.digest`; never part of a key. Both fields are
 * advisory: a runner that omits them only makes explanations coarser.
 */
export interface CacheMapExplain {
  /**
   * For a source of files (a local context): one digest per selected path (of its type, mode,
   * owner, size, content or link target), when at most `EXPLAIN_PATH_LIMIT` paths are selected.
   */
  readonly paths?: Readonly<Record<string, string>>;
  /** How many paths were selected (also when `paths` was left out for being too many). */
  readonly pathCount?: number;
  /** For an image source: the reference it resolved to, with its manifest digest. */
  readonly resolved?: string;
}

/** The most paths a runner lists in `CacheMapExplain.paths`; beyond it only a count is kept. */
export const EXPLAIN_PATH_LIMIT = 10_000;

export interface CacheDep {
  readonly contentChecksum?: ContentChecksum;
}

/** What a runner gets for one call: cancellation, and progress already tagged with its vertex. */
export interface OpContext {
  readonly signal: AbortSignal;
  readonly progress: VertexProgress;
}

/**
 * Runs one vertex. `cacheMap` may do I/O (resolve an image, hash a directory) but never changes
 * state; `run` receives one result per input (in input order) and returns one result per output.
 * A run that fails throws; the solver wraps the error in a VertexError.
 */
export interface OpRunner {
  cacheMap(context: OpContext): Promise<CacheMap>;
  run(inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]>;
}

/** Finds the runner for a vertex. Called once per vertex per solve. */
export type ResolveOp = (vertex: SolverVertex) => OpRunner;
