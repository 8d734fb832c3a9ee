import { opDigest, opInputs, type Definition, type Digest, type NetworkMode, type Op, type OpMetadata, type SourceLocation } from "../../solver/llb/index.js";

/**
 * Gives every RUN that left its network at "default" the network `mode`, as docker build's
 * `--network` (BuildKit's `force-network-mode`) does; a RUN with an explicit `--network=none|host`
 * keeps it. Ops that change get new digests, and so does everything downstream of them; metadata
 * and source locations follow their op. With mode "default" the definition is returned unchanged.
 */
export function forceNetwork(definition: Definition, mode: NetworkMode): Definition {
  if (mode === "default") return definition;
  const renamed = new Map<Digest, Digest>();
  const ops = new Map<Digest, Op>();
  const metadata = new Map<Digest, OpMetadata>();
  const locations = new Map<Digest, readonly SourceLocation[]>();
  for (const [digest, op] of definition.ops) {
    const rewritten = rewriteOp(op, mode, renamed);
    const next = rewritten === op ? digest : opDigest(rewritten);
    renamed.set(digest, next);
    ops.set(next, rewritten);
    const meta = definition.metadata.get(digest);
    if (meta !== undefined) metadata.set(next, meta);
    const where = definition.locations.get(digest);
    if (where !== undefined) locations.set(next, where);
  }
  const head = definition.head === null ? null : { ...definition.head, digest: renamed.get(definition.head.digest) ?? definition.head.digest };
  return { ops, metadata, locations, head };
}

function rewriteOp(op: Op, mode: NetworkMode, renamed: ReadonlyMap<Digest, Digest>): Op {
  const inputs = opInputs(op);
  const inputsChanged = inputs.some((input) => renamed.get(input.digest) !== input.digest);
  const newInputs = inputsChanged ? inputs.map((input) => ({ ...input, digest: renamed.get(input.digest) ?? input.digest })) : inputs;
  if (op.kind === "exec") {
    if (op.network !== "default" && !inputsChanged) return op;
    return { ...op, inputs: newInputs, network: op.network === "default" ? mode : op.network };
  }
  if (!inputsChanged || op.kind === "source") return op;
  return { ...op, inputs: newInputs } as Op;
}
