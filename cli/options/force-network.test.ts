import { describe, expect, test } from "vitest";
import { exec, marshal, opDigest, source, type ExecOp, type NetworkMode, type Output } from "../../solver/llb/index.js";
import { forceNetwork } from "./force-network.js";

function run(root: Output, args: string[], network: NetworkMode = "default"): Output {
  const op = exec({
    meta: { args, env: [], cwd: "/", user: "root" },
    mounts: [{ type: "bind", target: "/", input: root, selector: "/", readonly: false, output: true }],
    network,
    security: "sandbox",
  });
  return op.outputs[0]!;
}

describe("forceNetwork()", () => {
  test("sets the network of RUNs left at default, keeps explicit ones, and re-digests what depends on them", () => {
    const base = source("docker-image://busybox");
    const first = run(base, ["true"]);
    const second = run(first, ["false"], "none");
    const definition = marshal(second);
    const forced = forceNetwork(definition, "host");
    const ops = [...forced.ops.values()].filter((op): op is ExecOp => op.kind === "exec");
    expect(ops.map((op) => [op.meta.args[0], op.network])).toEqual([["true", "host"], ["false", "none"]]);
    for (const [digest, op] of forced.ops) expect(opDigest(op)).toBe(digest);
    expect(forced.head?.digest).not.toBe(definition.head?.digest);
    expect(forced.ops.has(forced.head!.digest)).toBe(true);
  });

  test("changes nothing for the default mode", () => {
    const definition = marshal(run(source("docker-image://busybox"), ["true"]));
    expect(forceNetwork(definition, "default")).toBe(definition);
  });
});
