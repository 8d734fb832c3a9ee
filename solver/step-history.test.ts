import { mkdtemp, rm, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CacheMissReason } from "./cache-explain.js";
import { createSolver } from "./scheduler.js";
import { openStepHistory, stepIdentity } from "./step-history.js";
import { constant, definitionOf, EventLog, FakeOps, MemoryCacheStore, sum } from "./testing/fake-ops.js";
import type { PlannedVertex } from "./plan.js";
import { sha256 } from "./llb/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-step-history-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function explanations(log: EventLog): Record<string, readonly CacheMissReason[]> {
  const out: Record<string, readonly CacheMissReason[]> = {};
  for (const event of log.events) if (event.type === "vertex.explain") out[event.name] = event.reasons;
  return out;
}

describe("solve with explain", () => {
  it("says first-build, then which input changed, then no-cache", async () => {
    const history = openStepHistory(join(dir, "explain"));
    const solver = createSolver({ cacheStore: new MemoryCacheStore(), stepHistory: history });
    const explain = { scope: "project", report: true };
    const ops = new FakeOps();

    const first = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1), constant(2)])), { resolveOp: ops.resolveOp, onEvent: first.sink, explain });
    expect(explanations(first)).toEqual({ "const 1": [{ kind: "first-build" }], "const 2": [{ kind: "first-build" }], head: [{ kind: "first-build" }] });
    // Explanations come before the step's own start.
    const types = first.events.filter((e) => e.type !== "vertex.log" && "name" in e && e.name === "head").map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(["vertex.explain", "vertex.started"]);

    const second = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1, "const 1", "salted"), constant(2)])), { resolveOp: ops.resolveOp, onEvent: second.sink, explain });
    const reasons = explanations(second);
    expect(Object.keys(reasons).sort()).toEqual(["const 1", "head"]);
    expect(reasons["const 1"]?.[0]?.kind).toBe("source-changed");
    expect(reasons["head"]).toEqual([{ kind: "input-changed", input: "const 1" }]);

    const third = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1, "const 1", "salted"), constant(2)])), { resolveOp: ops.resolveOp, onEvent: third.sink, explain, noCache: true });
    expect(explanations(third)).toEqual({ "const 1": [{ kind: "no-cache" }], "const 2": [{ kind: "no-cache" }], head: [{ kind: "no-cache" }] });
  });

  it("remembers steps without reporting, and reports nothing without the flag", async () => {
    const history = openStepHistory(join(dir, "explain"));
    const solver = createSolver({ cacheStore: new MemoryCacheStore(), stepHistory: history });
    const ops = new FakeOps();
    const quiet = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1), constant(2)])), { resolveOp: ops.resolveOp, onEvent: quiet.sink, explain: { scope: "p", report: false } });
    expect(quiet.events.some((e) => e.type === "vertex.explain")).toBe(false);
    const loud = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1), constant(3)])), { resolveOp: ops.resolveOp, onEvent: loud.sink, explain: { scope: "p", report: true } });
    expect(explanations(loud)["head"]).toEqual([{ kind: "input-changed", input: "const 3" }]);
    expect(explanations(loud)["const 3"]).toEqual([{ kind: "first-build" }]);
  });

  it("keeps scopes apart", async () => {
    const history = openStepHistory(join(dir, "explain"));
    const solver = createSolver({ cacheStore: new MemoryCacheStore(), stepHistory: history });
    const ops = new FakeOps();
    await solver.solve(definitionOf(sum("head", [constant(1), constant(2)])), { resolveOp: ops.resolveOp, explain: { scope: "a", report: false } });
    const log = new EventLog();
    await solver.solve(definitionOf(sum("head", [constant(1), constant(4)])), { resolveOp: ops.resolveOp, onEvent: log.sink, explain: { scope: "b", report: true } });
    expect(explanations(log)["head"]).toEqual([{ kind: "first-build" }]);
  });
});

describe("openStepHistory()", () => {
  it("reads a torn or foreign record as none", async () => {
    const history = openStepHistory(dir);
    const record = {
      identity: "x",
      name: "x",
      command: "x",
      key: sha256("k"),
      keyInputs: { digest: sha256("d"), deps: [] },
      op: { kind: "merge" as const, env: {}, fields: {} },
      inputs: [],
      buildArgs: [],
      time: 1,
    };
    await history.save("s", record);
    expect(await history.load("s", "x")).toEqual(record);
    expect(await history.load("other", "x")).toBeUndefined();
    const shard = (await readdir(dir)).find((name) => name !== "tmp") as string;
    const file = (await readdir(join(dir, shard)))[0] as string;
    await writeFile(join(dir, shard, file), '{"format":"kiln-step-v1","sc');
    expect(await history.load("s", "x")).toBeUndefined();
  });
});

describe("stepIdentity()", () => {
  const planned = (name: string, stage: string | undefined, identifier?: string): PlannedVertex => ({
    digest: sha256(name),
    name,
    locations: [{ source: { name: "app/Dockerfile", data: "" }, ranges: [] }],
    vertex: {
      digest: sha256(name),
      op: identifier === undefined ? { kind: "merge", inputs: [] } : { kind: "source", identifier, attrs: {} },
      metadata: { name, ...(stage === undefined ? {} : { description: { "kiln.stage": stage } }) },
      inputs: [],
    },
  });

  it("survives a changed command and total, not a changed step number or stage", () => {
    const id = stepIdentity(planned("[build  2/12] RUN make", "build"));
    expect(stepIdentity(planned("[build  2/13] RUN make all", "build"))).toBe(id);
    expect(stepIdentity(planned("[build  3/13] RUN make", "build"))).not.toBe(id);
    expect(stepIdentity(planned("[build  2/12] RUN make", "test"))).not.toBe(id);
  });

  it("identifies an image source without its pinned digest", () => {
    const a = stepIdentity(planned("[internal] load x", undefined, `docker-image://busybox:latest@sha256:${"a".repeat(64)}`));
    const b = stepIdentity(planned("[internal] load y", undefined, `docker-image://busybox:latest@sha256:${"b".repeat(64)}`));
    expect(a).toBe(b);
  });
});
