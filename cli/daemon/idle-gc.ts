import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A full garbage collection shortly after the daemon falls idle. V8 grows its heap in steps and
 * returns memory lazily, so a daemon that served many builds sits on the high-water mark of the
 * busiest one; a full collection in a quiet moment (no build running for `delayMs`, 100 ms by default) gives those
 * pages back and keeps the resident size flat across hundreds of builds. It costs a few tens of
 * milliseconds of a moment when nothing waits for the daemon.
 */
export class IdleGc {
  readonly #gc: () => void;
  readonly #delayMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(delayMs = 100) {
    this.#delayMs = delayMs;
    // `--expose-gc` set at run time applies to contexts created afterwards: a fresh one hands
    // back V8's gc function without changing how the daemon process is started.
    setFlagsFromString("--expose-gc");
    this.#gc = runInNewContext("gc") as () => void;
  }

  /** The daemon is idle now: collect after the delay, unless work starts again first. */
  schedule(): void {
    this.cancel();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#gc();
    }, this.#delayMs);
    this.#timer.unref();
  }

  /** Work started: no collection until the next idle moment. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
