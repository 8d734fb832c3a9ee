import { createHash, type Hash } from "node:crypto";
import { Worker } from "node:worker_threads";

/**
 * The sha256 of a stream of chunks, computed on a worker thread once the stream is large enough
 * to pay for one: on this kind of 2-core machine, hashing a 330 MB layer on the main thread
 * (~600 MB/s) was a third of its export, while the other core mostly waited on the disk.
 *
 * The first OFFLOAD_AFTER bytes are only held; a stream that ends within them is hashed inline
 * (a worker costs tens of milliseconds to start). A larger one starts the worker, which hashes
 * copies of the chunks in order; `update` returns a promise to wait on while more than
 * MAX_IN_FLIGHT bytes are still unhashed, so a slow hasher bounds the memory held. The chunks
 * given to `update` must not be changed afterwards until the stream's end (they may be held).
 */
export class StreamHash {
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #worker: HashWorker | undefined;

  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#worker !== undefined) return this.#worker.send(chunk);
    this.#held.push(chunk);
    this.#heldBytes += chunk.byteLength;
    if (this.#heldBytes <= OFFLOAD_AFTER) return undefined;
    this.#worker = new HashWorker();
    let waiting: Promise<void> | undefined;
    for (const held of this.#held) waiting = this.#worker.send(held) ?? waiting;
    this.#held = [];
    // One wait at most: every send past the limit returns the same one.
    return waiting;
  }

  /** The hex digest of everything given to `update`. */
  async digest(): Promise<string> {
    if (this.#worker !== undefined) return this.#worker.finish();
    const hash: Hash = createHash("sha256");
    for (const held of this.#held) hash.update(held);
    this.#held = [];
    return hash.digest("hex");
  }

  /** Stops the worker, if any (a failed or abandoned stream). Idempotent. */
  dispose(): void {
    this.#worker?.stop();
    this.#held = [];
  }
}

/** Streams smaller than this are hashed on the calling thread. */
export const OFFLOAD_AFTER = 16 << 20;
const MAX_IN_FLIGHT = 16 << 20;

/**
 * The worker's whole program, evaluated from this string so that bundling kiln needs no separate
 * entry file: each message is a chunk to hash (answered with its length) or null (answered with
 * the hex digest, after which the worker ends).
 */
const PROGRAM = `
const { parentPort } = require("node:worker_threads");
const hash = require("node:crypto").createHash("sha256");
parentPort.on("message", (chunk) => {
  if (chunk === null) {
    parentPort.postMessage(hash.digest("hex"));
    parentPort.close();
    return;
  }
  hash.update(chunk);
  parentPort.postMessage(chunk.byteLength);
});
`;

class HashWorker {
  readonly #worker = new Worker(PROGRAM, { eval: true });
  #inFlight = 0;
  /** While more than MAX_IN_FLIGHT bytes are unhashed: the one wait every `send` returns, and its resolver. */
  #waiting: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  #result: ((hex: string) => void) | undefined;
  #failure: Error | undefined;
  #failed: ((error: Error) => void) | undefined;

  constructor() {
    // A hash in progress never keeps the process alive on its own.
    this.#worker.unref();
    this.#worker.on("message", (message: number | string) => {
      if (typeof message === "string") {
        const done = this.#result;
        this.#result = undefined;
        this.#failed = undefined;
        done?.(message);
        return;
      }
      this.#inFlight -= message;
      if (this.#inFlight <= MAX_IN_FLIGHT / 2) this.#release();
    });
    const fail = (error: Error): void => {
      this.#failure ??= error;
      this.#failed?.(this.#failure);
      this.#release();
    };
    this.#worker.on("error", fail);
    this.#worker.on("exit", (code) => {
      if (this.#result !== undefined) fail(new Error(`The hashing worker thread exited (code ${code}) before giving its digest`));
    });
  }

  send(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    // Posting copies the bytes: the caller's buffer stays its own (it is written to disk too).
    this.#worker.postMessage(chunk);
    this.#inFlight += chunk.byteLength;
    if (this.#inFlight <= MAX_IN_FLIGHT) return undefined;
    this.#waiting ??= new Promise<void>((resolve) => {
      this.#drained = resolve;
    }).then(() => {
      if (this.#failure !== undefined) throw this.#failure;
    });
    return this.#waiting;
  }

  #release(): void {
    this.#drained?.();
    this.#drained = undefined;
    this.#waiting = undefined;
  }

  finish(): Promise<string> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<string>((resolve, reject) => {
      this.#result = resolve;
      this.#failed = reject;
      this.#worker.postMessage(null);
    });
  }

  stop(): void {
    this.#result = undefined;
    void this.#worker.terminate();
  }
}
