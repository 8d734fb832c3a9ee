import { describe, expect, it } from "vitest";
import { exportCacheManifest, importCacheManifest, selectCacheExport } from "./cache-export.js";
import { createSolver } from "./scheduler.js";
import { constant, definitionOf, EventLog, FakeOps, MemoryCacheStore, sum } from "./testing/fake-ops.js";

async function solvedTwoStages() {
  const store = new MemoryCacheStore();
  const solver = createSolver({ cacheStore: store });
  // "final" builds on "base" (input 0) and copies from a "builder" stage (input 1).
  const base = sum("base", [constant(1, "image")]);
  const builder = sum("builder", [constant(2, "tools")]);
  const head = sum("final", [base, builder], { checksum: true });
  const definition = definitionOf(head);
  const result = await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
  return { store, definition, result, head };
}

describe("selectCacheExport()", () => {
  it("takes every recorded vertex and its alias in max mode", async () => {
    const { result } = await solvedTwoStages();
    const keys = selectCacheExport(result.vertices, result.vertices.at(-1)!.digest, "max");
    expect(keys).toHaveLength(result.vertices.length + 1);
    expect(keys).toContain(result.cacheKey);
  });

  it("takes only the head's chain of first inputs in min mode", async () => {
    const { result, head } = await solvedTwoStages();
    const keys = selectCacheExport(result.vertices, head.vertex.digest, "min");
    const names = result.vertices.filter((v) => keys.includes(v.key)).map((v) => v.name);
    expect(names).toEqual(["image", "base", "final"]);
  });
});

describe("exportCacheManifest() and importCacheManifest()", () => {
  it("carry a build's cache to a fresh store, where the same build runs nothing", async () => {
    const { store, result, definition } = await solvedTwoStages();
    const manifest = await exportCacheManifest(store, selectCacheExport(result.vertices, result.vertices.at(-1)!.digest, "max"));
    const copy = structuredClone(manifest);

    const fresh = new MemoryCacheStore();
    expect(await importCacheManifest(fresh, copy)).toBe(manifest.records.length);
    expect(await importCacheManifest(fresh, copy)).toBe(0);
    const ops = new FakeOps();
    const log = new EventLog();
    const again = await createSolver({ cacheStore: fresh }).solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink });
    expect(again.ref).toEqual(result.ref);
    expect(ops.totalRuns()).toBe(0);
    expect(log.ofType("vertex.cached")).toHaveLength(result.vertices.length);
  });
});
