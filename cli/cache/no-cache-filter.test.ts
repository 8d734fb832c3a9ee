import { describe, expect, test } from "vitest";
import { file, marshal, source } from "../../solver/llb/index.js";
import { withNoCacheFilter } from "./no-cache-filter.js";

describe("withNoCacheFilter()", () => {
  test("marks the vertices tagged with a listed stage, by name regardless of case, and keeps digests", () => {
    const base = source("docker-image://busybox", {}, undefined, { metadata: { name: "FROM", description: { "kiln.stage": "deps" } } });
    const head = file(base, [{ kind: "mkdir", path: "/x", mode: 0o755, makeParents: true, owner: null }], undefined, {
      metadata: { name: "WORKDIR", description: { "kiln.stage": "App" } },
    });
    const definition = marshal(head);
    const filtered = withNoCacheFilter(definition, ["app"]);
    expect([...filtered.ops.keys()]).toEqual([...definition.ops.keys()]);
    expect(filtered.metadata.get(head.vertex.digest)?.ignoreCache).toBe(true);
    expect(filtered.metadata.get(base.vertex.digest)?.ignoreCache).toBeUndefined();
    expect(withNoCacheFilter(definition, [])).toBe(definition);
  });
});
