import { availableParallelism } from "node:os";
import PQueue from "p-queue";
import type { Definition, Digest } from "./llb/index.js";
import { computeCacheKey, type CacheKeyDep, type CacheKeyInputs } from "./cache-key.js";
import { explainStep, summarizeOp, type CacheMissReason, type InputNow, type StepRecord } from "./cache-explain.js";
import { copySelector } from "./copy-selector.js";
import { stepIdentity, type StepHistory } from "./step-history.js";
import type { CacheRecord, CacheStore } from "./cache-store.js";
import type { CacheSource } from "./cache-source.js";
import { RunnerContractError, VertexError } from "./errors.js";
import { InFlightRuns } from "./in-flight.js";
import type { CacheMap, OpContext, OpRunner, ResolveOp, ResultRef } from "./op.js";
import { createPlan, type Plan, type PlannedVertex } from "./plan.js";
import { vertexProgress, type ProgressSink } from "./progress.js";

/** How a solver is made: where results are remembered, and how many ops may run at once. */
export interface SolverOptions {
  readonly cacheStore: CacheStore;
  /** Ops running at the same time across all solves of this solver; default: four per core. */
  readonly concurrency?: number;
  /** Where steps that ran are remembered for cache-miss explanations, unless a solve names its own. */
  readonly stepHistory?: StepHistory;
}

/** One solve's inputs beside the Definition. */
export interface SolveOptions {
  /** Gives the runner of each vertex; called once per reachable vertex per solve. */
  readonly resolveOp: ResolveOp;
  /** Cancels the solve: running ops get an aborted `ctx.signal`, and `solve` rejects with its reason. */
  readonly signal?: AbortSignal;
  readonly onEvent?: ProgressSink;
  /** Ignore cache hits (every needed vertex runs); results are still recorded. */
  readonly noCache?: boolean;
  /** Whether a result recorded earlier still exists (its snapshot may have been pruned); default: yes. */
  readonly isAlive?: (ref: ResultRef) => Promise<boolean>;
  /**
   * Imported caches, consulted in order when the store misses. A hit there is CACHED like a local
   * one; its results are materialized only when the solve needs them, then recorded in the store.
   */
  readonly cacheSources?: readonly CacheSource[];
  /** Remembering why steps ran, and saying so (`--explain-cache`). */
  readonly explain?: ExplainOptions;
}

/**
 * Cache-miss explanations. Every step that runs is remembered in `history` (one small file per
 * step, written after its run, whether or not `report`): remembering costs a write per step that
 * ran anyway, while running is what costs, so the first `--explain-cache` build after ordinary
 * ones already has something to compare with. With `report`, every step that runs gets a
 * `vertex.explain` event (before its `vertex.started`) from comparing it with its last record.
 */
export interface ExplainOptions {
  /** Default: the solver's `stepHistory`; with neither, nothing is remembered or explained. */
  readonly history?: StepHistory;
  /** Keeps unrelated projects apart: the CLI passes the context directory and Dockerfile path. */
  readonly scope: string;
  readonly report: boolean;
  /** Names of the build args given, so a changed RUN environment variable reads as a build arg. */
  readonly buildArgs?: readonly string[];
}

/** The head's result (null when the head is scratch), its cache key, and what became of each vertex. */
export interface SolveResult {
  readonly ref: ResultRef | null;
  readonly cacheKey: Digest | null;
  /** Every reachable vertex, inputs first (empty for scratch). */
  readonly vertices: readonly SolvedVertex[];
}

/**
 * How one vertex was solved: `cached` (a hit), `ran`, or `skipped` (a miss nothing needed, so it
 * has no record). `aliasKey` is set for vertices with content-checksum deps (see README).
 */
export interface SolvedVertex {
  readonly digest: Digest;
  readonly name: string;
  readonly key: Digest;
  readonly aliasKey?: Digest;
  /** The digests of its inputs, in input order. */
  readonly inputs: readonly Digest[];
  readonly status: "cached" | "ran" | "skipped";
}

/** Runs Definitions through OpRunners with a persistent cache. See README.md for the semantics. */
export interface Solver {
  solve(definition: Definition, options: SolveOptions): Promise<SolveResult>;
}

/**
 * A solver whose solves share one run queue (`concurrency` ops at once) and one table of
 * in-flight runs, so concurrent solves needing the same cache key run it once.
 */
export function createSolver(options: SolverOptions): Solver {
  const shared: SolverState = {
    store: options.cacheStore,
    queue: new PQueue({ concurrency: options.concurrency ?? defaultConcurrency() }),
    inFlight: new InFlightRuns<readonly ResultRef[]>(),
    ...(options.stepHistory === undefined ? {} : { stepHistory: options.stepHistory }),
  };
  return {
    async solve(definition, solveOptions) {
      solveOptions.signal?.throwIfAborted();
      const plan = createPlan(definition);
      if (plan.head === null) return { ref: null, cacheKey: null, vertices: [] };
      return new Solve(shared, plan, solveOptions).run(plan.head.digest, plan.head.output);
    },
  };
}

interface SolverState {
  readonly store: CacheStore;
  readonly queue: PQueue;
  readonly inFlight: InFlightRuns<readonly ResultRef[]>;
  readonly stepHistory?: StepHistory;
}

/** A vertex's cache key, what it was computed from, and a hit found on the way (alias lookups). */
interface KeyInfo {
  readonly key: Digest;
  readonly inputs: CacheKeyInputs;
  /** For vertices with content-checksum deps: the definition-based key an alias is stored under. */
  readonly aliasKey?: Digest;
  readonly aliasHit?: CacheRecord;
  /** With `aliasHit`: the alias record's own last use. */
  readonly aliasLastUsed?: number;
}

/**
 * A hit on a record used less than this long ago does not touch it again: `lastUsed` orders
 * records for pruning (keep-duration is hours, keep-storage least recently used first), which this
 * granularity does not disturb, and a fully cached rebuild then writes nothing to the store.
 */
export const TOUCH_INTERVAL_MS = 10 * 60_000;

const NO_EVENTS: ProgressSink = () => undefined;
const ALWAYS_ALIVE = async (): Promise<boolean> => true;

/**
 * The state of one solve. Every per-vertex step is memoized as a promise (runner, cache map, key,
 * lookup, result), so a vertex shared by several stages is asked, keyed and run once, and every
 * step runs as soon as what it needs is there: independent branches overlap by construction.
 */
class Solve {
  readonly #state: SolverState;
  readonly #plan: Plan;
  readonly #options: SolveOptions;
  readonly #sink: ProgressSink;
  readonly #isAlive: (ref: ResultRef) => Promise<boolean>;
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal;
  readonly #pending = new Set<Promise<unknown>>();
  #failed = false;
  #firstError: unknown;

  readonly #runners = new Map<Digest, OpRunner>();
  readonly #cacheMaps = new Map<Digest, Promise<CacheMap>>();
  readonly #keys = new Map<Digest, Promise<KeyInfo>>();
  readonly #lookups = new Map<Digest, Promise<CacheRecord | undefined>>();
  readonly #results = new Map<Digest, Promise<readonly ResultRef[]>>();
  readonly #status = new Map<Digest, "cached" | "ran">();
  /** Step-history writes in flight (see `ExplainOptions`). */
  readonly #historyWrites: Promise<void>[] = [];
  /** Why each vertex that missed runs (only when reporting explanations). */
  readonly #reasons = new Map<Digest, Promise<readonly CacheMissReason[]>>();
  /** Records that came from an imported cache (their results are not local yet), with where from. */
  readonly #imported = new WeakMap<CacheRecord, { readonly source: CacheSource; readonly key: Digest }>();

  constructor(state: SolverState, plan: Plan, options: SolveOptions) {
    this.#state = state;
    this.#plan = plan;
    this.#options = options;
    this.#sink = options.onEvent ?? NO_EVENTS;
    this.#isAlive = options.isAlive ?? ALWAYS_ALIVE;
    this.#signal = options.signal === undefined ? this.#controller.signal : AbortSignal.any([this.#controller.signal, options.signal]);
  }

  async run(head: Digest, output: number): Promise<SolveResult> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(this.#signal.reason);
      this.#signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      return await Promise.race([this.#solve(head, output), aborted]);
    } catch (error) {
      this.#fail(error);
      await this.#settle();
      throw this.#firstError;
    } finally {
      if (onAbort !== undefined) this.#signal.removeEventListener("abort", onAbort);
    }
  }

  async #solve(head: Digest, output: number): Promise<SolveResult> {
    // Look every reachable vertex up (so progress shows each one CACHED or not) while the head's
    // result pulls in exactly what it needs. Vertices marked ignoreCache are built even when
    // nothing needs them: "not cached" must mean "built by this solve".
    const lookups = this.#plan.order.map((digest) => this.#lookup(digest));
    const forced = this.#plan.order
      .filter((digest) => this.#vertex(digest).vertex.metadata.ignoreCache === true)
      .map((digest) => this.#result(digest));
    const [results, keyInfo] = await Promise.all([this.#result(head), this.#key(head)]);
    await Promise.all([...lookups, ...forced]);
    const ref = results[output];
    if (ref === undefined) throw this.#missingOutput(head, output, results.length);
    const vertices = await Promise.all(
      this.#plan.order.map(async (digest): Promise<SolvedVertex> => {
        const planned = this.#vertex(digest);
        const info = await this.#key(digest);
        return {
          digest,
          name: planned.name,
          key: info.key,
          ...(info.aliasKey === undefined ? {} : { aliasKey: info.aliasKey }),
          inputs: planned.vertex.inputs.map((input) => input.digest),
          status: this.#status.get(digest) ?? "skipped",
        };
      }),
    );
    await Promise.all(this.#historyWrites);
    return { ref, cacheKey: keyInfo.key, vertices };
  }

  /** Records the first failure and cancels everything else this solve has in flight. */
  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#firstError = this.#options.signal?.aborted === true ? this.#options.signal.reason : error;
    this.#controller.abort(this.#firstError);
  }

  /** Waits until nothing this solve started is still running (cancelled runs have stopped). */
  async #settle(): Promise<void> {
    let size = -1;
    while (size !== this.#pending.size) {
      size = this.#pending.size;
      await Promise.allSettled([...this.#pending]);
    }
  }

  #memo<T>(table: Map<Digest, Promise<T>>, digest: Digest, make: () => Promise<T>): Promise<T> {
    let promise = table.get(digest);
    if (promise === undefined) {
      promise = make();
      table.set(digest, promise);
      this.#pending.add(promise);
      // Handled here so a step nobody awaits after a failure is not an unhandled rejection.
      promise.catch(() => undefined);
    }
    return promise;
  }

  #vertex(digest: Digest): PlannedVertex {
    const planned = this.#plan.vertices.get(digest);
    if (planned === undefined) throw new RunnerContractError(`Cannot solve "${digest}": it is not in the plan`);
    return planned;
  }

  #context(digest: Digest): OpContext {
    return { signal: this.#signal, progress: vertexProgress(this.#sink, digest) };
  }

  #runner(digest: Digest): OpRunner {
    let runner = this.#runners.get(digest);
    if (runner === undefined) {
      runner = this.#options.resolveOp(this.#vertex(digest).vertex);
      this.#runners.set(digest, runner);
    }
    return runner;
  }

  #skipsCache(planned: PlannedVertex): boolean {
    return this.#options.noCache === true || planned.vertex.metadata.ignoreCache === true;
  }

  /** Runs a runner call for `planned`, turning its failure into a VertexError (the first one fails the solve). */
  async #guard<T>(planned: PlannedVertex, call: () => Promise<T>): Promise<T> {
    try {
      this.#signal.throwIfAborted();
      return await call();
    } catch (error) {
      if (this.#signal.aborted || error instanceof VertexError) throw error;
      const wrapped = new VertexError(planned, error);
      this.#fail(wrapped);
      throw wrapped;
    }
  }

  #cacheMap(digest: Digest): Promise<CacheMap> {
    return this.#memo(this.#cacheMaps, digest, async () => {
      const planned = this.#vertex(digest);
      return this.#guard(planned, () => this.#runner(digest).cacheMap(this.#context(digest)));
    });
  }

  #key(digest: Digest): Promise<KeyInfo> {
    return this.#memo(this.#keys, digest, async () => {
      const planned = this.#vertex(digest);
      const inputs = planned.vertex.inputs;
      const keysPromise = Promise.all(inputs.map((input) => this.#key(input.digest)));
      keysPromise.catch(() => undefined);
      const cacheMap = await this.#cacheMap(digest);
      // Inputs read by content checksum are started now, beside the other inputs' keys: waiting
      // for every key first would chain independent stages (a COPY --from=b's key would wait on
      // the stage its base came from). When the alias below hits they were only looked up, which
      // for inputs whose keys are unchanged is a cache hit, not a run.
      const eagerResults = inputs.map((_, index) => {
        if (cacheMap.deps[index]?.contentChecksum === undefined) return undefined;
        const result = this.#inputResult(digest, index);
        result.catch(() => undefined);
        return result;
      });
      const inputKeys = await keysPromise;
      const byKey: CacheKeyDep[] = inputs.map((input, index) => ({
        kind: "key",
        key: (inputKeys[index] as KeyInfo).key,
        output: input.output,
      }));
      const definitionInputs: CacheKeyInputs = { digest: cacheMap.digest, deps: byKey };
      const definitionKey = computeCacheKey(definitionInputs);
      if (!inputs.some((_, index) => cacheMap.deps[index]?.contentChecksum !== undefined)) {
        return { key: definitionKey, inputs: definitionInputs };
      }
      // Content-checksum deps need the inputs' results. An alias under the definition key (inputs
      // unchanged since it was recorded) answers without them, so a cached COPY stays lazy.
      if (!this.#skipsCache(planned)) {
        const alias = await this.#loadAlive(definitionKey);
        if (alias?.canonicalKey !== undefined) {
          const found = await this.#loadAlive(alias.canonicalKey);
          if (found?.keyInputs !== undefined) {
            return { key: alias.canonicalKey, inputs: found.keyInputs, aliasKey: definitionKey, aliasHit: found, aliasLastUsed: alias.lastUsed };
          }
        }
      }
      const deps = await Promise.all(
        inputs.map(async (input, index): Promise<CacheKeyDep> => {
          const checksum = cacheMap.deps[index]?.contentChecksum;
          if (checksum === undefined) return byKey[index] as CacheKeyDep;
          const ref = await (eagerResults[index] ?? this.#inputResult(digest, index));
          return { kind: "checksum", checksum: await this.#guard(planned, () => checksum(ref, this.#signal)) };
        }),
      );
      const contentInputs: CacheKeyInputs = { digest: cacheMap.digest, deps };
      return { key: computeCacheKey(contentInputs), inputs: contentInputs, aliasKey: definitionKey };
    });
  }

  /** The record of a vertex's key, when caching applies to it and every result still exists. */
  #lookup(digest: Digest): Promise<CacheRecord | undefined> {
    return this.#memo(this.#lookups, digest, async () => {
      const planned = this.#vertex(digest);
      const info = await this.#key(digest);
      if (this.#skipsCache(planned)) return undefined;
      const record = info.aliasHit ?? (await this.#loadAlive(info.key));
      if (record === undefined) return undefined;
      this.#status.set(digest, "cached");
      this.#sink({ type: "vertex.cached", digest, name: planned.name, time: Date.now() });
      const now = Date.now();
      const stale = (lastUsed: number | undefined): boolean => lastUsed === undefined || now - lastUsed >= TOUCH_INTERVAL_MS || lastUsed > now;
      const touches: Promise<void>[] = [];
      if (stale(record.lastUsed)) touches.push(this.#state.store.touch(info.key));
      // An imported record's results are not local: it is recorded once materialized (#result).
      if (info.aliasKey !== undefined && !this.#imported.has(record)) {
        if (info.aliasHit === undefined) touches.push(this.#state.store.record(info.aliasKey, { ...record, canonicalKey: info.key, created: now, lastUsed: now }));
        else if (stale(info.aliasLastUsed)) touches.push(this.#state.store.touch(info.aliasKey));
      }
      // Best effort: a read-only or contended store must not turn a hit into a failure.
      await Promise.all(touches.map((touch) => touch.catch(() => undefined)));
      return record;
    });
  }

  async #loadAlive(key: Digest): Promise<CacheRecord | undefined> {
    const record = await this.#state.store.load(key);
    if (record !== undefined) {
      const alive = await Promise.all(record.results.map((ref) => this.#isAlive(ref)));
      if (alive.every(Boolean)) return record;
    }
    for (const source of this.#options.cacheSources ?? []) {
      const found = await source.load(key);
      if (found === undefined) continue;
      this.#imported.set(found, { source, key });
      return found;
    }
    return undefined;
  }

  /** The results of a vertex: its cache record's, or those of running it (inputs first). */
  #result(digest: Digest): Promise<readonly ResultRef[]> {
    return this.#memo(this.#results, digest, async () => {
      const record = await this.#lookup(digest);
      const planned = this.#vertex(digest);
      if (record !== undefined) {
        const imported = this.#imported.get(record);
        if (imported === undefined) return record.results;
        const results = await this.#guard(planned, () => imported.source.materialize(imported.key, record, this.#signal));
        if (results !== undefined) {
          checkResults(planned.name, results);
          await this.#record(planned, await this.#key(digest), results, record);
          return results;
        }
        // The imported results could not be had (the source said why): build the step instead.
      }
      const info = await this.#key(digest);
      const explain = this.#options.explain;
      const history = explain?.history ?? this.#state.stepHistory;
      const step = explain === undefined || history === undefined ? undefined : await this.#stepRecord(planned, info);
      if (explain?.report === true && history !== undefined && step !== undefined) await this.#explain(planned, step, explain, history);
      const inputs = await Promise.all(planned.vertex.inputs.map((_, index) => this.#inputResult(digest, index)));
      const results = await this.#execute(planned, info, inputs);
      // Advisory: a history that cannot be written costs a later explanation, never this build.
      // Off the critical path: the solve waits for these writes only before it returns.
      if (explain !== undefined && history !== undefined && step !== undefined) {
        this.#historyWrites.push(history.save(explain.scope, { ...step, time: Date.now() }).catch(() => undefined));
      }
      return results;
    });
  }

  /** What is remembered of a step about to run (see `StepRecord`). */
  async #stepRecord(planned: PlannedVertex, info: KeyInfo): Promise<StepRecord> {
    const cacheMap = await this.#cacheMap(planned.digest);
    const { op, metadata, inputs } = planned.vertex;
    return {
      identity: stepIdentity(planned),
      name: planned.name,
      command: metadata.description?.["com.docker.dockerfile.v1.command"] ?? planned.name,
      key: info.key,
      keyInputs: info.inputs,
      op: summarizeOp(op),
      inputs: inputs.map((input) => {
        const from = this.#vertex(input.digest);
        return { identity: stepIdentity(from), name: from.name };
      }),
      buildArgs: [...(this.#options.explain?.buildArgs ?? [])].sort(),
      ...(cacheMap.explain === undefined ? {} : { explain: cacheMap.explain }),
      time: Date.now(),
    };
  }

  /** Compares a step about to run with its last run and reports why it runs (`vertex.explain`). */
  #explain(planned: PlannedVertex, step: StepRecord, explain: ExplainOptions, history: StepHistory): Promise<readonly CacheMissReason[]> {
    return this.#memo(this.#reasons, planned.digest, async () => {
      let reasons: readonly CacheMissReason[];
      if (this.#skipsCache(planned)) reasons = [{ kind: "no-cache" }];
      else {
        const before = await history.load(explain.scope, step.identity).catch(() => undefined);
        if (before === undefined) reasons = [{ kind: "first-build" }];
        else {
          const { op, inputs } = planned.vertex;
          const now = await Promise.all(
            inputs.map(async (input, index): Promise<InputNow> => {
              const from = this.#vertex(input.digest);
              const ran = this.#reasons.get(input.digest);
              const selects = op.kind === "file" ? copySelector(op, index) : undefined;
              return {
                identity: stepIdentity(from),
                name: from.name,
                ...(ran === undefined ? {} : { reasons: await ran.catch(() => []) }),
                ...(selects === undefined ? {} : { selects }),
              };
            }),
          );
          reasons = explainStep(before, step, now);
        }
      }
      this.#sink({ type: "vertex.explain", digest: planned.digest, name: planned.name, reasons, time: Date.now() });
      return reasons;
    });
  }

  async #inputResult(digest: Digest, index: number): Promise<ResultRef> {
    const input = this.#vertex(digest).vertex.inputs[index];
    if (input === undefined) throw new RunnerContractError(`Cannot solve "${digest}": it has no input ${index}`);
    const results = await this.#result(input.digest);
    const ref = results[input.output];
    if (ref === undefined) throw this.#missingOutput(input.digest, input.output, results.length);
    return ref;
  }

  #missingOutput(digest: Digest, output: number, count: number): RunnerContractError {
    return new RunnerContractError(
      `Cannot use output ${output} of "${this.#vertex(digest).name}": its runner returned ${count} result${count === 1 ? "" : "s"}`,
    );
  }

  /** Runs a vertex in the shared queue (once per key across solves), reports it, and records it. */
  async #execute(planned: PlannedVertex, info: KeyInfo, inputs: readonly ResultRef[]): Promise<readonly ResultRef[]> {
    const { digest, name } = planned;
    const runner = this.#runner(digest);
    let started: number | undefined;
    const waiter = {
      signal: this.#signal,
      progress: vertexProgress(this.#sink, digest),
      onStarted: (time: number) => {
        started = time;
        this.#sink({ type: "vertex.started", digest, name, time });
      },
      onCompleted: (time: number) => {
        this.#sink({ type: "vertex.completed", digest, name, started: started ?? time, time });
      },
    };
    return this.#guard(planned, async () => {
      try {
        const results = await this.#state.inFlight.run(info.key, waiter, (shared) =>
          this.#state.queue.add(
            async () => {
              // A task cancelled while it waited in the queue ends here, without running.
              shared.signal.throwIfAborted();
              shared.started();
              const out = await runner.run(inputs, { signal: shared.signal, progress: shared.progress });
              // A run that returns after cancellation may be half-done: never record it.
              shared.signal.throwIfAborted();
              checkResults(name, out);
              await this.#record(planned, info, out);
              shared.completed();
              return out;
            },
            // No queue signal: p-queue would reject a running task at once on abort, before its
            // runner has killed its container and unmounted; the runner sees shared.signal itself.
          ),
        );
        this.#status.set(digest, "ran");
        return results;
      } catch (error) {
        const time = Date.now();
        const message = error instanceof Error ? error.message : String(error);
        this.#sink({ type: "vertex.failed", digest, name, started: started ?? time, time, error: message });
        throw error;
      }
    });
  }

  /** Records results under the vertex's key (and alias); `from` is the imported record they were materialized from. */
  async #record(planned: PlannedVertex, info: KeyInfo, results: readonly ResultRef[], from?: CacheRecord): Promise<void> {
    const now = Date.now();
    const op = planned.vertex.op;
    const type = op.kind === "source" ? `source.${op.identifier.split("://")[0] ?? "unknown"}` : op.kind;
    const record: CacheRecord = { results, created: from?.created ?? now, lastUsed: now, vertexName: planned.name, type, keyInputs: info.inputs };
    await this.#state.store.record(info.key, record);
    if (info.aliasKey !== undefined) await this.#state.store.record(info.aliasKey, { ...record, canonicalKey: info.key });
  }
}

function checkResults(name: string, results: unknown): asserts results is readonly ResultRef[] {
  if (!Array.isArray(results) || !results.every((r) => typeof r === "object" && r !== null && typeof (r as ResultRef).id === "string")) {
    throw new RunnerContractError(`Cannot record the results of "${name}": its runner returned ${JSON.stringify(results)}, not a list of { id }`);
  }
}

/**
 * Runs at once by default: four per core. What a RUN costs is unknown beforehand (a sleep, a
 * download or apt-get mostly waits), and capping runs at the core count serialised three
 * independent sleeping stages on this 2-core machine; BuildKit does not cap parallelism at all.
 */
function defaultConcurrency(): number {
  return Math.max(4, availableParallelism() * 4);
}
