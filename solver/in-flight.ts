import type { Digest } from "./llb/index.js";
import type { VertexProgress } from "./progress.js";

/** One solve's interest in a shared run: its cancellation, and where its progress goes. */
export interface RunWaiter {
  readonly signal: AbortSignal;
  readonly progress: VertexProgress;
  /** Called once, with the time the run started (at once if it already has). */
  onStarted(time: number): void;
  /** Called once when the work reports success, before its queue slot is freed. */
  onCompleted(time: number): void;
}

/** What a shared run's work function gets: the run's own signal, progress fanned out to every waiter. */
export interface SharedRunContext {
  readonly signal: AbortSignal;
  readonly progress: VertexProgress;
  /** The work calls this when it really starts (after waiting for a queue slot). */
  started(): void;
  /** The work calls this when it has succeeded, so completion is reported before anything queued after it starts. */
  completed(): void;
}

interface SharedRun<T> {
  readonly controller: AbortController;
  readonly promise: Promise<T>;
  readonly waiters: Set<RunWaiter>;
  startedAt: number | undefined;
  completedAt: number | undefined;
}

/**
 * Runs of the same cache key, shared across the concurrent solves of one solver: the first solve
 * that needs a key starts the work, later ones wait for the same promise. The work is cancelled
 * only when every waiter has gone (each waiter that cancels stops waiting at once, with its own
 * signal's reason); when it settles, the key is free again, so a later solve finds the record the
 * work stored instead.
 */
export class InFlightRuns<T> {
  readonly #runs = new Map<Digest, SharedRun<T>>();

  run(key: Digest, waiter: RunWaiter, work: (context: SharedRunContext) => Promise<T>): Promise<T> {
    waiter.signal.throwIfAborted();
    let shared = this.#runs.get(key);
    if (shared === undefined || shared.controller.signal.aborted) shared = this.#start(key, work);
    return this.#wait(shared, waiter);
  }

  #start(key: Digest, work: (context: SharedRunContext) => Promise<T>): SharedRun<T> {
    const controller = new AbortController();
    const waiters = new Set<RunWaiter>();
    const fanOut: VertexProgress = {
      log: (stream, data) => {
        for (const w of waiters) w.progress.log(stream, data);
      },
      bytes: (id, current, total) => {
        for (const w of waiters) w.progress.bytes(id, current, total);
      },
    };
    const shared: SharedRun<T> = {
      controller,
      waiters,
      startedAt: undefined,
      completedAt: undefined,
      promise: Promise.resolve().then(() =>
        work({
          signal: controller.signal,
          progress: fanOut,
          started: () => {
            if (shared.startedAt !== undefined) return;
            shared.startedAt = Date.now();
            for (const w of waiters) w.onStarted(shared.startedAt);
          },
          completed: () => {
            if (shared.completedAt !== undefined) return;
            shared.completedAt = Date.now();
            for (const w of waiters) w.onCompleted(shared.completedAt);
          },
        }),
      ),
    };
    this.#runs.set(key, shared);
    const release = (): void => {
      if (this.#runs.get(key) === shared) this.#runs.delete(key);
    };
    shared.promise.then(release, release);
    return shared;
  }

  #wait(shared: SharedRun<T>, waiter: RunWaiter): Promise<T> {
    shared.waiters.add(waiter);
    if (shared.startedAt !== undefined) waiter.onStarted(shared.startedAt);
    if (shared.completedAt !== undefined) waiter.onCompleted(shared.completedAt);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        shared.waiters.delete(waiter);
        if (shared.waiters.size === 0) {
          shared.controller.abort(waiter.signal.reason);
          // This waiter cancelled the run: report only once the run has wound down (its
          // container killed and removed), so a cancelled build leaves nothing running.
          const settled = (): void => reject(waiter.signal.reason);
          shared.promise.then(settled, settled);
        } else reject(waiter.signal.reason);
      };
      waiter.signal.addEventListener("abort", onAbort, { once: true });
      shared.promise.then(
        (value) => {
          waiter.signal.removeEventListener("abort", onAbort);
          shared.waiters.delete(waiter);
          resolve(value);
        },
        (error: unknown) => {
          waiter.signal.removeEventListener("abort", onAbort);
          shared.waiters.delete(waiter);
          reject(error);
        },
      );
    });
  }
}
