import { describe, expect, it } from "vitest";
import { sha256 } from "./llb/index.js";
import { computeCacheKey, explainCacheKey, type CacheKeyInputs } from "./cache-key.js";

const op = sha256("op");
const input = sha256("input");

describe("computeCacheKey()", () => {
  it("is the sha256 of the canonical JSON of the op digest and the deps", () => {
    const inputs: CacheKeyInputs = { digest: op, deps: [{ kind: "key", key: input, output: 0 }] };
    expect(computeCacheKey(inputs)).toBe(sha256(`{"deps":[{"key":"${input}","kind":"key","output":0}],"digest":"${op}"}`));
  });

  it("changes with the op digest, an input key, an output index and a checksum", () => {
    const base = computeCacheKey({ digest: op, deps: [{ kind: "key", key: input, output: 0 }] });
    const variants = [
      computeCacheKey({ digest: sha256("other op"), deps: [{ kind: "key", key: input, output: 0 }] }),
      computeCacheKey({ digest: op, deps: [{ kind: "key", key: sha256("other"), output: 0 }] }),
      computeCacheKey({ digest: op, deps: [{ kind: "key", key: input, output: 1 }] }),
      computeCacheKey({ digest: op, deps: [{ kind: "checksum", checksum: input }] }),
      computeCacheKey({ digest: op, deps: [] }),
    ];
    expect(new Set([base, ...variants]).size).toBe(6);
  });
});

describe("explainCacheKey()", () => {
  it("names the op digest and the input that changed", () => {
    const before: CacheKeyInputs = { digest: op, deps: [{ kind: "key", key: input, output: 0 }, { kind: "checksum", checksum: sha256("a") }] };
    const after: CacheKeyInputs = { digest: op, deps: [{ kind: "key", key: input, output: 0 }, { kind: "checksum", checksum: sha256("b") }] };
    expect(explainCacheKey(before, after)).toEqual([
      { kind: "input", index: 1, before: { kind: "checksum", checksum: sha256("a") }, after: { kind: "checksum", checksum: sha256("b") } },
    ]);
    expect(explainCacheKey(before, { ...after, digest: sha256("new") })[0]).toEqual({ kind: "op", before: op, after: sha256("new") });
    expect(explainCacheKey(before, before)).toEqual([]);
  });
});
