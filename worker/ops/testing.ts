import type { Digest, Op } from "../../solver/llb/index.js";
import { opDigest } from "../../solver/llb/index.js";
import type { OpContext, SolverVertex } from "../../solver/op.js";
import type { Snapshotter } from "../snapshotter/types.js";

/** Test support: a vertex for `op` as the solver would hand it to a runner. */
export function vertexOf(op: Op): SolverVertex {
  const inputs = "inputs" in op ? op.inputs : [];
  return { digest: opDigest(op), op, metadata: {}, inputs };
}

/** Test support: an OpContext whose progress logs are collected in `logs`. */
export function testContext(signal: AbortSignal = new AbortController().signal): OpContext & { logs: { stream: string; data: string }[] } {
  const logs: { stream: string; data: string }[] = [];
  return {
    signal,
    logs,
    progress: {
      log: (stream, data) => logs.push({ stream, data }),
      bytes: () => {},
    },
  };
}

/** Test support: a committed snapshot whose tree is what `fill(dir)` writes into an empty directory. */
export async function committedTree(snapshotter: Snapshotter, fill: (dir: string) => void | Promise<void>, parent: string | null = null): Promise<string> {
  const active = await snapshotter.prepare(parent);
  if (parent !== null) throw new Error("committedTree() fills only parentless snapshots");
  await fill(active.upperdir);
  return snapshotter.commit(active);
}

/** A fake digest for inputs of hand-made ops in tests. */
export const FAKE_INPUT: Digest = `sha256:${"0".repeat(64)}` as Digest;
