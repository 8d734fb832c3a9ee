import { describe, expect, it } from "vitest";
import type { Digest } from "./llb/index.js";
import { exportCacheManifest, selectCacheExport, type CacheManifest } from "./cache-export.js";
import type { CacheSource } from "./cache-source.js";
import type { CacheRecord } from "./cache-store.js";
import type { ResultRef } from "./op.js";
import { createSolver } from "./scheduler.js";
import { constant, definitionOf, EventLog, FakeOps, MemoryCacheStore, sum } from "./testing/fake-ops.js";

/** A CacheSource over an exported manifest; materializing returns the recorded ids (or nothing for `broken` keys). */
class ManifestSource implements CacheSource {
  readonly materialized: Digest[] = [];
  readonly #records: Map<Digest, CacheRecord>;
  readonly #broken: ReadonlySet<Digest>;

  constructor(manifest: CacheManifest, broken: ReadonlySet<Digest> = new Set()) {
    this.#records = new Map(manifest.records.map((r) => [r.key, r.record]));
    this.#broken = broken;
  }

  async load(key: Digest): Promise<CacheRecord | undefined> {
    const record = this.#records.get(key);
    return record === undefined ? undefined : structuredClone(record);
  }

  async materialize(key: Digest, record: CacheRecord): Promise<readonly ResultRef[] | undefined> {
    if (this.#broken.has(key)) return undefined;
    this.materialized.push(key);
    return record.results.map((ref) => ({ id: ref.id }));
  }
}

async function exported(checksum = true) {
  const store = new MemoryCacheStore();
  const base = sum("base", [constant(1, "image")]);
  const builder = sum("builder", [constant(2, "tools")]);
  const head = sum("final", [base, builder], { checksum });
  const definition = definitionOf(head);
  const result = await createSolver({ cacheStore: store }).solve(definition, { resolveOp: new FakeOps().resolveOp });
  const manifest = await exportCacheManifest(store, selectCacheExport(result.vertices, head.vertex.digest, "max"));
  return { definition, result, manifest };
}

describe("SolveOptions.cacheSources", () => {
  it("answers every lookup a fresh store misses, and materializes only the head's results", async () => {
    // Without content-checksum deps: those request their inputs' results early (see README).
    const { definition, result, manifest } = await exported(false);
    const source = new ManifestSource(manifest);
    const fresh = new MemoryCacheStore();
    const ops = new FakeOps();
    const log = new EventLog();
    const again = await createSolver({ cacheStore: fresh }).solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink, cacheSources: [source] });
    expect(ops.totalRuns()).toBe(0);
    expect(log.ofType("vertex.cached")).toHaveLength(result.vertices.length);
    expect(source.materialized).toEqual([result.cacheKey]);
    expect(again.ref).toEqual(result.ref);
    // The materialized record is now local, with local results; nothing else was written.
    expect(fresh.records.get(result.cacheKey as Digest)?.results).toEqual([again.ref]);
    expect(fresh.records.size).toBe(1);
  });

  it("runs a step whose imported results cannot be materialized, with its inputs from the source", async () => {
    const { definition, result, manifest } = await exported();
    const source = new ManifestSource(manifest, new Set([result.cacheKey as Digest]));
    const ops = new FakeOps();
    const again = await createSolver({ cacheStore: new MemoryCacheStore() }).solve(definition, { resolveOp: ops.resolveOp, cacheSources: [source] });
    expect(ops.runs("final")).toBe(1);
    expect(ops.totalRuns()).toBe(1);
    expect(again.ref).toEqual({ id: "3" });
  });

  it("prefers a live local record to the source", async () => {
    const { definition, manifest } = await exported();
    const store = new MemoryCacheStore();
    await createSolver({ cacheStore: store }).solve(definition, { resolveOp: new FakeOps().resolveOp });
    const source = new ManifestSource(manifest);
    const ops = new FakeOps();
    await createSolver({ cacheStore: store }).solve(definition, { resolveOp: ops.resolveOp, cacheSources: [source] });
    expect(ops.totalRuns()).toBe(0);
    expect(source.materialized).toEqual([]);
  });
});
