import { describe, expect, it } from "vitest";
import { sha256, type Digest } from "./llb/index.js";
import { collectUsage, pruneCache, selectForPrune, type CacheUsage } from "./cache-prune.js";
import type { CacheRecord } from "./cache-store.js";
import { MemoryCacheStore } from "./testing/fake-ops.js";

const DAY = 24 * 60 * 60 * 1000;
const NOW = 100 * DAY;

function usage(name: string, lastUsed: number, size: number, results: readonly string[] = [name]): CacheUsage {
  const record: CacheRecord = { results: results.map((id) => ({ id })), created: 0, lastUsed, vertexName: name };
  return { key: sha256(name), record, size, shared: false };
}
const names = (list: readonly CacheUsage[]): string[] => list.map((u) => u.record.vertexName ?? "").sort();

describe("selectForPrune()", () => {
  const entries = [usage("new", NOW - DAY, 100), usage("week", NOW - 7 * DAY, 300), usage("month", NOW - 30 * DAY, 500)];

  it("deletes records unused for longer than keepDuration", () => {
    expect(names(selectForPrune(entries, { keepDuration: 2 * DAY, now: NOW }))).toEqual(["month", "week"]);
  });

  it("deletes least recently used records until the rest fit in keepStorage", () => {
    expect(names(selectForPrune(entries, { keepStorage: 300, now: NOW }))).toEqual(["month", "week"]);
    expect(names(selectForPrune(entries, { keepStorage: 450, now: NOW }))).toEqual(["month"]);
    expect(selectForPrune(entries, { keepStorage: 900, now: NOW })).toEqual([]);
  });

  it("counts a result shared by two records once and frees it with the last one", () => {
    const shared = [usage("alias", NOW - 9 * DAY, 500, ["snap"]), usage("key", NOW - 8 * DAY, 500, ["snap"]), usage("other", NOW, 100)];
    // Together they use 600 bytes; dropping only "alias" frees nothing, so "key" goes too.
    expect(names(selectForPrune(shared, { keepStorage: 550, now: NOW }))).toEqual(["alias", "key"]);
    expect(selectForPrune(shared, { keepStorage: 600, now: NOW })).toEqual([]);
  });

  it("deletes everything the filter admits with all", () => {
    expect(names(selectForPrune(entries, { all: true, filter: (u) => u.size > 200, now: NOW }))).toEqual(["month", "week"]);
  });
});

describe("pruneCache()", () => {
  it("deletes the chosen records and releases results nothing else refers to", async () => {
    const store = new MemoryCacheStore();
    const put = (name: string, lastUsed: number, results: readonly string[]) =>
      store.record(sha256(name) as Digest, { results: results.map((id) => ({ id })), created: 0, lastUsed, vertexName: name });
    await put("old", NOW - 30 * DAY, ["a", "shared"]);
    await put("recent", NOW, ["shared"]);
    const result = await pruneCache(store, { keepDuration: DAY, now: NOW });
    expect(names(result.deleted)).toEqual(["old"]);
    expect(result.released).toEqual([{ id: "a" }]);
    expect(names(await collectUsage(store))).toEqual(["recent"]);
  });

  it("reports sizes from sizeOf and marks shared results", async () => {
    const store = new MemoryCacheStore();
    await store.record(sha256("x"), { results: [{ id: "s" }], created: 0, lastUsed: 2 });
    await store.record(sha256("y"), { results: [{ id: "s" }, { id: "t" }], created: 0, lastUsed: 1 });
    const list = await collectUsage(store, { sizeOf: async (ref) => (ref.id === "s" ? 1000 : 10) });
    expect(list.map((u) => u.key)).toEqual([sha256("x"), sha256("y")]);
    expect(list.every((u) => u.shared)).toBe(true);
    expect(list[1]!.size - list[0]!.size).toBeGreaterThan(10);
  });
});
