import type { Digest } from "./llb/index.js";
import type { CacheRecord } from "./cache-store.js";
import type { ResultRef } from "./op.js";

/**
 * The port for imported caches (`--import-cache`, `--cache-from`): a read-only source of records
 * that the solver consults when its own store misses. `exporter/cache/` implements it over a local
 * cache directory, a registry artifact or an image's inline cache.
 *
 * A source's records name results that are not here yet: `load` is cheap (it reads the cache's
 * metadata only), and `materialize` makes one record's results exist locally (fetching and
 * applying layer blobs) only when the solve actually needs them, so an imported hit whose step
 * nothing needs costs nothing.
 */
export interface CacheSource {
  /** The record stored under `key`, or undefined. Its `results` are the source's, not local refs. */
  load(key: Digest): Promise<CacheRecord | undefined>;
  /**
   * Makes the results of `record` (as `load(key)` returned it) exist locally and returns local
   * refs, one per result, in order. Undefined when they cannot be had after all (a corrupt or
   * missing blob: the source reports why itself); the solver then runs the step instead.
   */
  materialize(key: Digest, record: CacheRecord, signal: AbortSignal): Promise<readonly ResultRef[] | undefined>;
}
