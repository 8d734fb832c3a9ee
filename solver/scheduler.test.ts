import { describe, expect, it } from "vitest";
import { marshal, type Definition, type Digest, type Op } from "./llb/index.js";
import { VertexError } from "./errors.js";
import { createSolver, TOUCH_INTERVAL_MS } from "./scheduler.js";
import { constant, definitionOf, EventLog, FakeOps, MemoryCacheStore, sum } from "./testing/fake-ops.js";

function setup(concurrency = 4) {
  const store = new MemoryCacheStore();
  const solver = createSolver({ cacheStore: store, concurrency });
  return { store, solver };
}

describe("Solver.solve()", () => {
  it("runs only the vertices the head needs", async () => {
    const { solver } = setup();
    const head = sum("head", [constant(1), constant(2)]);
    const full = marshal(head);
    const unused = marshal(sum("unused", [constant(40), constant(2)]));
    const definition: Definition = {
      ...full,
      ops: new Map<Digest, Op>([...unused.ops, ...full.ops]),
      metadata: new Map([...unused.metadata, ...full.metadata]),
    };
    const ops = new FakeOps();
    const result = await solver.solve(definition, { resolveOp: ops.resolveOp });
    expect(result.ref).toEqual({ id: "3" });
    expect(ops.runs("head")).toBe(1);
    expect(ops.runs("unused")).toBe(0);
    expect(ops.runs("const 40")).toBe(0);
    expect(ops.cacheMapCalls.has("unused")).toBe(false);
  });

  it("returns a null ref and key when the head is scratch", async () => {
    const { solver } = setup();
    expect(await solver.solve(definitionOf(null), { resolveOp: new FakeOps().resolveOp })).toEqual({ ref: null, cacheKey: null, vertices: [] });
  });

  it("runs a vertex shared by two branches once", async () => {
    const { solver } = setup();
    const one = constant(1);
    const head = sum("head", [sum("left", [one]), sum("right", [one, constant(2)])]);
    const ops = new FakeOps();
    const result = await solver.solve(definitionOf(head), { resolveOp: ops.resolveOp });
    expect(result.ref).toEqual({ id: "4" });
    expect(ops.runs("const 1")).toBe(1);
    expect(ops.cacheMapCalls.get("const 1")).toBe(1);
    expect(ops.totalRuns()).toBe(5);
  });

  it("reports started and completed with timestamps and forwards runner logs", async () => {
    const { solver } = setup();
    const log = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1)])), { resolveOp: new FakeOps().resolveOp, onEvent: log.sink });
    expect(log.summary()).toEqual(["started const 1", "completed const 1", "started head", "completed head"]);
    for (const event of log.events) {
      if (event.type === "vertex.completed") expect(event.started).toBeLessThanOrEqual(event.time);
    }
    expect(log.events.some((e) => e.type === "vertex.log" && e.data === "running head\n")).toBe(true);
  });

  it("runs nothing on a second identical solve and reports every vertex cached", async () => {
    const { solver } = setup();
    const definition = definitionOf(sum("head", [sum("left", [constant(1)]), sum("right", [constant(2)])]));
    const first = await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });

    const ops = new FakeOps();
    const log = new EventLog();
    const second = await solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink });
    expect(second.ref).toEqual(first.ref);
    expect(second.cacheKey).toBe(first.cacheKey);
    expect(first.vertices.every((v) => v.status === "ran")).toBe(true);
    expect(second.vertices.every((v) => v.status === "cached")).toBe(true);
    expect(ops.totalRuns()).toBe(0);
    expect(log.summary().every((line) => line.startsWith("cached "))).toBe(true);
    expect(log.ofType("vertex.cached").sort()).toEqual(["const 1", "const 2", "head", "left", "right"]);
  });

  it("does not run the inputs of a cached head, even when their results are gone", async () => {
    const { solver } = setup();
    const definition = definitionOf(sum("head", [sum("left", [constant(1)]), constant(2)]));
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });

    const ops = new FakeOps();
    const log = new EventLog();
    const result = await solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink, isAlive: async (ref) => ref.id === "3" });
    expect(result.ref).toEqual({ id: "3" });
    expect(ops.totalRuns()).toBe(0);
    expect(log.ofType("vertex.cached")).toEqual(["head"]);
    expect(Object.fromEntries(result.vertices.map((v) => [v.name, v.status]))).toEqual({
      "const 1": "skipped",
      left: "skipped",
      "const 2": "skipped",
      head: "cached",
    });
  });

  it("rebuilds a vertex whose recorded result is no longer alive, from cached inputs", async () => {
    const { solver } = setup();
    const definition = definitionOf(sum("head", [sum("left", [constant(1)]), constant(2)]));
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });

    const ops = new FakeOps();
    const result = await solver.solve(definition, { resolveOp: ops.resolveOp, isAlive: async (ref) => ref.id !== "3" });
    expect(result.ref).toEqual({ id: "3" });
    expect([...ops.runCalls.keys()]).toEqual(["head"]);
  });

  it("runs two independent branches at the same time", async () => {
    const { solver } = setup(4);
    const ops = new FakeOps();
    const log = new EventLog();
    const left = sum("left", [constant(1)], { block: true });
    const right = sum("right", [constant(2)], { block: true });
    const solving = solver.solve(definitionOf(sum("head", [left, right])), { resolveOp: ops.resolveOp, onEvent: log.sink });
    // Both blocked runs are in progress at once: neither can finish before it is released.
    await Promise.all([ops.started("left"), ops.started("right")]);
    ops.release("left");
    ops.release("right");
    expect((await solving).ref).toEqual({ id: "3" });
    const order = log.summary();
    const lastStart = Math.max(order.indexOf("started left"), order.indexOf("started right"));
    const firstEnd = Math.min(order.indexOf("completed left"), order.indexOf("completed right"));
    expect(lastStart).toBeLessThan(firstEnd);
    const completed = log.events.filter((e) => e.type === "vertex.completed" && (e.name === "left" || e.name === "right"));
    const [a, b] = completed.map((e) => (e.type === "vertex.completed" ? [e.started, e.time] : [0, 0]));
    expect(Math.max(a![0]!, b![0]!)).toBeLessThanOrEqual(Math.min(a![1]!, b![1]!));
  });

  it("runs at most `concurrency` ops at once", async () => {
    const { solver } = setup(1);
    const ops = new FakeOps();
    const log = new EventLog();
    const left = sum("left", [constant(1)], { block: true });
    const right = sum("right", [constant(2)], { block: true });
    const solving = solver.solve(definitionOf(sum("head", [left, right])), { resolveOp: ops.resolveOp, onEvent: log.sink });
    await Promise.race([ops.started("left"), ops.started("right")]);
    const first = ops.runs("left") === 1 ? "left" : "right";
    const second = first === "left" ? "right" : "left";
    ops.release(first);
    await ops.started(second);
    ops.release(second);
    await solving;
    const order = log.summary();
    expect(order.indexOf(`completed ${first}`)).toBeLessThan(order.indexOf(`started ${second}`));
  });

  it("runs each op once for concurrent solves of the same definition", async () => {
    const { solver } = setup();
    const ops = new FakeOps();
    const [logA, logB] = [new EventLog(), new EventLog()];
    const definition = definitionOf(sum("head", [sum("middle", [constant(1), constant(2)], { block: true })]));
    const a = solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: logA.sink });
    const b = solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: logB.sink });
    // Both solves are waiting on the one blocked run before it is released.
    await Promise.all([logA.waitForVertex("vertex.started", "middle"), logB.waitForVertex("vertex.started", "middle")]);
    ops.release("middle");
    const [resultA, resultB] = await Promise.all([a, b]);
    expect(resultA.cacheKey).toBe(resultB.cacheKey);
    expect(resultA.ref).toEqual(resultB.ref);
    expect(resultA.ref).toEqual({ id: "3" });
    for (const name of ["const 1", "const 2", "middle", "head"]) expect(ops.runs(name)).toBe(1);
  });

  it("aborts a blocked sibling when a vertex fails and rejects with a VertexError", async () => {
    const { solver, store } = setup();
    const ops = new FakeOps();
    const log = new EventLog();
    const definition = definitionOf(
      sum("head", [sum("slow", [constant(1)], { block: true }), sum("broken", [constant(2)], { fail: "exit code 2" })]),
    );
    const error = await solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VertexError);
    const vertexError = error as VertexError;
    expect(vertexError.code).toBe("KILN_VERTEX_FAILED");
    expect(vertexError.message).toBe("broken: exit code 2");
    expect(vertexError.vertexName).toBe("broken");
    const brokenDigest = [...definition.metadata].find(([, m]) => m.name === "broken")?.[0];
    expect(vertexError.digest).toBe(brokenDigest);
    expect(vertexError.locations).toEqual(definition.locations.get(brokenDigest!));
    expect((vertexError.cause as Error).message).toBe("exit code 2");
    // The blocked sibling saw its signal abort and was never released; nothing partial was recorded.
    expect(ops.aborted.has("slow")).toBe(true);
    expect(ops.runs("head")).toBe(0);
    expect([...store.records.values()].map((r) => r.vertexName).sort()).toEqual(["const 1", "const 2"]);
    expect(log.ofType("vertex.failed").sort()).toEqual(["broken", "slow"]);
  });

  it("wraps a failing cache map in a VertexError", async () => {
    const { solver } = setup();
    const ops = new FakeOps();
    const definition = definitionOf(sum("head", [constant(1)]));
    const error = await solver
      .solve(definition, {
        resolveOp: (vertex) => {
          const runner = ops.resolveOp(vertex);
          return vertex.metadata.name === "const 1" ? { ...runner, cacheMap: async () => Promise.reject(new Error("registry unreachable")) } : runner;
        },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VertexError);
    expect((error as VertexError).message).toBe("const 1: registry unreachable");
    expect(ops.totalRuns()).toBe(0);
  });

  it("stops when the caller cancels, rejecting with the signal's reason and recording nothing partial", async () => {
    const { solver, store } = setup();
    const ops = new FakeOps();
    const controller = new AbortController();
    const solving = solver.solve(definitionOf(sum("head", [sum("slow", [constant(1)], { block: true })])), {
      resolveOp: ops.resolveOp,
      signal: controller.signal,
    });
    await ops.started("slow");
    const reason = new Error("user pressed ctrl-c");
    controller.abort(reason);
    await expect(solving).rejects.toBe(reason);
    expect(ops.aborted.has("slow")).toBe(true);
    expect([...store.records.values()].map((r) => r.vertexName)).toEqual(["const 1"]);
  });

  it("keeps a dependent cached when an input's key changes but its content checksum does not", async () => {
    const { solver } = setup();
    const build = (salt: string, value = 5) => definitionOf(sum("after", [sum("copy", [constant(value, "five", salt)], { checksum: true }), constant(1)]));
    await solver.solve(build("a"), { resolveOp: new FakeOps().resolveOp });

    const ops = new FakeOps();
    const log = new EventLog();
    const result = await solver.solve(build("b"), { resolveOp: ops.resolveOp, onEvent: log.sink });
    expect(result.ref).toEqual({ id: "6" });
    expect([...ops.runCalls.keys()]).toEqual(["five"]);
    expect(log.ofType("vertex.cached").sort()).toEqual(["after", "const 1", "copy"]);

    const changed = new FakeOps();
    await solver.solve(build("b", 7), { resolveOp: changed.resolveOp });
    expect([...changed.runCalls.keys()].sort()).toEqual(["after", "copy", "five"]);
  });

  it("answers a content-checksum vertex from its alias without running its inputs or checksumming again", async () => {
    const { solver } = setup();
    const definition = definitionOf(sum("copy", [constant(5), constant(7)], { checksum: true }));
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });

    // Checksummed inputs are started beside the key computation (so independent stages overlap);
    // when their records are alive that is a lookup, not a run.
    const ops = new FakeOps();
    const result = await solver.solve(definition, { resolveOp: ops.resolveOp });
    expect(result.ref).toEqual({ id: "12" });
    expect(ops.totalRuns()).toBe(0);
    expect(ops.checksumCalls.size).toBe(0);
  });

  it("gives the same cache key for the same inputs whatever path computed it", async () => {
    const { solver } = setup();
    const definition = definitionOf(sum("copy", [constant(5), constant(7)], { checksum: true }));
    const first = await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    const second = await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    const third = await solver.solve(definition, { resolveOp: new FakeOps().resolveOp, noCache: true });
    expect(second.cacheKey).toBe(first.cacheKey);
    expect(third.cacheKey).toBe(first.cacheKey);
  });

  it("runs every needed vertex with noCache and still records the results", async () => {
    const { solver, store } = setup();
    const definition = definitionOf(sum("head", [constant(1), constant(2)]));
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    const writes = store.writes;

    const ops = new FakeOps();
    const log = new EventLog();
    await solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink, noCache: true });
    expect(ops.totalRuns()).toBe(3);
    expect(log.ofType("vertex.cached")).toEqual([]);
    expect(store.writes).toBe(writes + 3);
  });

  it("reruns a vertex marked ignoreCache and takes the rest from the cache", async () => {
    const { solver } = setup();
    const definition = definitionOf(sum("head", [sum("fresh", [constant(1)], { ignoreCache: true }), constant(2)]));
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });

    const ops = new FakeOps();
    const log = new EventLog();
    await solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink });
    expect([...ops.runCalls.keys()]).toEqual(["fresh"]);
    expect(log.ofType("vertex.cached").sort()).toEqual(["const 1", "const 2", "head"]);
  });

  it("lets a concurrent solve finish a shared run that another solve cancelled", async () => {
    const { solver } = setup();
    const ops = new FakeOps();
    const [logA, logB] = [new EventLog(), new EventLog()];
    const definition = definitionOf(sum("head", [sum("middle", [constant(1)], { block: true })]));
    const controller = new AbortController();
    const a = solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: logA.sink, signal: controller.signal });
    const b = solver.solve(definition, { resolveOp: ops.resolveOp, onEvent: logB.sink });
    await Promise.all([logA.waitForVertex("vertex.started", "middle"), logB.waitForVertex("vertex.started", "middle")]);
    controller.abort(new Error("cancelled a"));
    await expect(a).rejects.toThrow("cancelled a");
    expect(ops.aborted.has("middle")).toBe(false);
    ops.release("middle");
    expect((await b).ref).toEqual({ id: "1" });
    expect(ops.runs("middle")).toBe(1);
  });
});

describe("Solver.solve() on a fully cached build", () => {
  class CountingStore extends MemoryCacheStore {
    touches = 0;
    override async touch(key: Digest, time?: number): Promise<void> {
      this.touches++;
      return super.touch(key, time);
    }
  }

  it("touches no record used within the touch interval and refreshes one used longer ago", async () => {
    const store = new CountingStore();
    const solver = createSolver({ cacheStore: store });
    const definition = definitionOf(sum("head", [constant(1), constant(2)]));
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    const writes = store.writes;
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    expect(store.touches).toBe(0);
    expect(store.writes).toBe(writes);

    const [key, record] = [...store.records].find(([, r]) => r.vertexName === "head") ?? [];
    if (key === undefined || record === undefined) throw new Error("no record of head");
    const old = Date.now() - 2 * TOUCH_INTERVAL_MS;
    store.records.set(key, { ...record, lastUsed: old });
    await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    expect(store.touches).toBe(1);
    expect(store.records.get(key)?.lastUsed).toBeGreaterThan(old + TOUCH_INTERVAL_MS);
  });
});
