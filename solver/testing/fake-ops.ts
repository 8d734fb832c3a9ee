import { canonicalJson, marshal, merge, sha256, source, type Definition, type Digest, type Output } from "../llb/index.js";
import type { CacheStore } from "../cache-store.js";
import type { CacheRecord } from "../cache-store.js";
import type { CacheMap, OpContext, OpRunner, ResolveOp, ResultRef, SolverVertex } from "../op.js";
import type { ProgressEvent } from "../progress.js";

/**
 * Fake arithmetic ops for solver tests (after buildkit's scheduler_test.go): a source
 * `value://N` produces the number N, a merge produces the sum of its inputs. Behaviour is steered
 * per op name: `block` makes a run wait until `release(name)`, `fail` makes it throw, `checksum`
 * makes every input a content-checksum dep (the checksum is the input's value, so two inputs with
 * different keys but the same value look the same). Results are `{ id: "<value>" }`.
 */
export interface FakeOpOptions {
  readonly block?: boolean;
  readonly fail?: string;
  readonly checksum?: boolean;
  readonly ignoreCache?: boolean;
}

/** A constant; `salt` changes its op digest (and so its key) without changing its value. */
export function constant(value: number, name = `const ${value}`, salt = "", options: FakeOpOptions = {}): Output {
  return source(`value://${value}`, { salt, ...behaviour(options) }, undefined, {
    metadata: { name, ...(options.ignoreCache === true ? { ignoreCache: true } : {}) },
    locations: [{ source: { name: "Dockerfile", data: `FROM ${name}\n` }, ranges: [{ start: { line: 1, character: 0 }, end: { line: 1, character: 5 } }] }],
  });
}

/** The sum of `inputs`. */
export function sum(name: string, inputs: readonly Output[], options: FakeOpOptions = {}): Output {
  return merge(inputs, {
    metadata: { name, description: behaviour(options), ...(options.ignoreCache === true ? { ignoreCache: true } : {}) },
    locations: [{ source: { name: "Dockerfile", data: `RUN ${name}\n` }, ranges: [{ start: { line: 1, character: 0 }, end: { line: 1, character: 3 } }] }],
  });
}

function behaviour(options: FakeOpOptions): Record<string, string> {
  return {
    ...(options.block === true ? { block: "true" } : {}),
    ...(options.fail === undefined ? {} : { fail: options.fail }),
    ...(options.checksum === true ? { checksum: "true" } : {}),
  };
}

export function definitionOf(head: Output | null): Definition {
  return marshal(head);
}

interface Gate {
  readonly promise: Promise<void>;
  readonly release: () => void;
}

/** The fake world: resolves ops to fake runners, counts calls, and holds blocked runs. */
export class FakeOps {
  readonly cacheMapCalls = new Map<string, number>();
  readonly runCalls = new Map<string, number>();
  readonly checksumCalls = new Map<string, number>();
  /** Names whose runs saw their signal abort. */
  readonly aborted = new Set<string>();
  readonly #gates = new Map<string, Gate>();
  readonly #running = new Map<string, Gate>();

  readonly resolveOp: ResolveOp = (vertex) => this.#runner(vertex);

  /** Opens the gate of a blocking op (before or after it starts). */
  release(name: string): void {
    this.#gate(this.#gates, name).release();
  }

  /** Resolves once a run of `name` has started. */
  started(name: string): Promise<void> {
    return this.#gate(this.#running, name).promise;
  }

  runs(name: string): number {
    return this.runCalls.get(name) ?? 0;
  }

  totalRuns(): number {
    return [...this.runCalls.values()].reduce((a, b) => a + b, 0);
  }

  #gate(table: Map<string, Gate>, name: string): Gate {
    let gate = table.get(name);
    if (gate === undefined) {
      let release!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      gate = { promise, release };
      table.set(name, gate);
    }
    return gate;
  }

  #runner(vertex: SolverVertex): OpRunner {
    const name = vertex.metadata.name ?? vertex.digest;
    const attrs = vertex.op.kind === "source" ? vertex.op.attrs : (vertex.metadata.description ?? {});
    const count = (table: Map<string, number>): void => {
      table.set(name, (table.get(name) ?? 0) + 1);
    };
    return {
      cacheMap: async (): Promise<CacheMap> => {
        count(this.cacheMapCalls);
        // As op.ts asks: what the op computes apart from its inputs' identities (those enter
        // through deps), so a content-checksum dep can keep the key when an input's key changes.
        return {
          digest: vertex.op.kind === "source" ? vertex.digest : sha256(canonicalJson({ ...vertex.op, inputs: vertex.inputs.map((i) => i.output) })),
          deps: vertex.inputs.map(() =>
            attrs["checksum"] === "true"
              ? {
                  contentChecksum: async (ref: ResultRef) => {
                    count(this.checksumCalls);
                    return sha256(`value ${ref.id}`);
                  },
                }
              : {},
          ),
        };
      },
      run: async (inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> => {
        count(this.runCalls);
        this.#gate(this.#running, name).release();
        context.progress.log("stdout", `running ${name}\n`);
        if (attrs["block"] === "true") {
          await new Promise<void>((resolve, reject) => {
            const onAbort = (): void => {
              this.aborted.add(name);
              reject(context.signal.reason);
            };
            if (context.signal.aborted) return onAbort();
            context.signal.addEventListener("abort", onAbort, { once: true });
            void this.#gate(this.#gates, name).promise.then(() => {
              context.signal.removeEventListener("abort", onAbort);
              resolve();
            });
          });
        }
        if (attrs["fail"] !== undefined) throw new Error(attrs["fail"]);
        if (vertex.op.kind === "source") return [{ id: vertex.op.identifier.slice("value://".length) }];
        return [{ id: String(inputs.reduce((total, ref) => total + Number(ref.id), 0)) }];
      },
    };
  }
}

/** An in-memory CacheStore that counts loads and records. */
export class MemoryCacheStore implements CacheStore {
  readonly records = new Map<Digest, CacheRecord>();
  loads = 0;
  writes = 0;

  async load(key: Digest): Promise<CacheRecord | undefined> {
    this.loads++;
    return this.records.get(key);
  }
  async record(key: Digest, record: CacheRecord): Promise<void> {
    this.writes++;
    this.records.set(key, record);
  }
  async touch(key: Digest, time = Date.now()): Promise<void> {
    const record = this.records.get(key);
    if (record !== undefined) this.records.set(key, { ...record, lastUsed: time });
  }
  async delete(key: Digest): Promise<boolean> {
    return this.records.delete(key);
  }
  async *list(): AsyncIterable<{ key: Digest; record: CacheRecord; size: number }> {
    for (const [key, record] of this.records) yield { key, record, size: JSON.stringify(record).length };
  }
}

/** Collects progress events. */
export class EventLog {
  readonly events: ProgressEvent[] = [];
  readonly #waiters: { readonly match: (event: ProgressEvent) => boolean; readonly resolve: () => void }[] = [];
  readonly sink = (event: ProgressEvent): void => {
    this.events.push(event);
    for (const waiter of this.#waiters.filter((w) => w.match(event))) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };

  /** Resolves when an event matching `match` has arrived (at once if one already has). */
  waitFor(match: (event: ProgressEvent) => boolean): Promise<void> {
    if (this.events.some(match)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  /** Resolves when vertex `name` has an event of `type`. */
  waitForVertex(type: ProgressEvent["type"], name: string): Promise<void> {
    return this.waitFor((e) => e.type === type && "name" in e && e.name === name);
  }

  /** `type name` strings of vertex events, in order (logs and bytes left out). */
  summary(): string[] {
    return this.events.flatMap((e) =>
      e.type === "vertex.started" || e.type === "vertex.cached" || e.type === "vertex.completed" || e.type === "vertex.failed"
        ? [`${e.type.slice("vertex.".length)} ${e.name}`]
        : [],
    );
  }

  ofType(type: ProgressEvent["type"]): string[] {
    return this.summary().filter((line) => line.startsWith(`${type.slice("vertex.".length)} `)).map((line) => line.slice(line.indexOf(" ") + 1));
  }
}
