import { describe, expect, it } from "vitest";
import { exec, source, type Definition, type Digest, type Op } from "./llb/index.js";
import { createPlan, describeOp } from "./plan.js";
import { constant, definitionOf, sum } from "./testing/fake-ops.js";

describe("createPlan()", () => {
  it("holds only what the head reaches, inputs before the ops that use them", () => {
    const one = constant(1);
    const left = sum("left", [one]);
    const head = sum("head", [left, sum("right", [one, constant(2)])]);
    const definition = definitionOf(head);
    const extra = definitionOf(sum("unused", [constant(9)]));
    const plan = createPlan({ ...definition, ops: new Map<Digest, Op>([...extra.ops, ...definition.ops]) });

    expect(plan.vertices.size).toBe(5);
    expect([...plan.vertices.values()].map((v) => v.name)).not.toContain("unused");
    const position = new Map(plan.order.map((digest, index) => [digest, index]));
    for (const digest of plan.order) {
      for (const input of plan.vertices.get(digest)!.vertex.inputs) expect(position.get(input.digest)!).toBeLessThan(position.get(digest)!);
    }
    expect(plan.order.at(-1)).toBe(head.vertex.digest);
    expect(plan.graph.outDegree(one.vertex.digest)).toBe(2);
    expect(plan.graph.inDegree(head.vertex.digest)).toBe(2);
  });

  it("is empty for a scratch head", () => {
    const plan = createPlan(definitionOf(null));
    expect(plan.head).toBeNull();
    expect(plan.order).toEqual([]);
  });

  it("names each vertex from its metadata, its locations from the source map", () => {
    const head = sum("head", [constant(1)]);
    const definition = definitionOf(head);
    const planned = createPlan(definition).vertices.get(head.vertex.digest)!;
    expect(planned.name).toBe("head");
    expect(planned.locations).toEqual(definition.locations.get(head.vertex.digest));
  });

  it("rejects an input that the definition does not define", () => {
    const definition = definitionOf(sum("head", [constant(1)]));
    const broken: Definition = { ...definition, ops: new Map([...definition.ops].filter(([, op]) => op.kind !== "source")) };
    expect(() => createPlan(broken)).toThrow(expect.objectContaining({ code: "KILN_SOLVE_INVALID_DEFINITION" }));
  });
});

describe("describeOp()", () => {
  it("falls back to the command of an exec and the identifier of a source", () => {
    const base = source("docker-image://busybox:latest");
    const run = exec({
      meta: { args: ["/bin/sh", "-c", "make"], env: [], cwd: "/", user: "root" },
      mounts: [{ type: "bind", target: "/", input: base, selector: "", readonly: false, output: true }],
      network: "default",
      security: "sandbox",
    });
    expect(describeOp(base.vertex.op)).toBe("docker-image://busybox:latest");
    expect(describeOp(run.vertex.op)).toBe("/bin/sh -c make");
  });
});
