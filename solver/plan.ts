import { DirectedGraph } from "graphology";
import { assertNever, opInputs, type Definition, type Digest, type Op, type OpInput, type SourceLocation } from "./llb/index.js";
import { PlanError, type FailedVertex } from "./errors.js";
import type { SolverVertex } from "./op.js";

/** One vertex of a plan: what a runner is asked for, plus what progress and errors show. */
export interface PlannedVertex extends FailedVertex {
  readonly vertex: SolverVertex;
}

/**
 * The part of a Definition a solve needs: the vertices reachable from the head, nothing else.
 * `order` lists them inputs first (a topological order), `graph` has an edge from each input to
 * the vertices that use it. An empty plan (`head` null) means the result is scratch.
 */
export interface Plan {
  readonly head: OpInput | null;
  readonly vertices: ReadonlyMap<Digest, PlannedVertex>;
  readonly order: readonly Digest[];
  readonly graph: DirectedGraph;
}

/**
 * Plans a solve of `definition`: walks from the head through inputs, so ops that the head does
 * not need (other stages, unused sources) are left out. Throws PlanError when an input names an
 * op the Definition does not hold.
 */
export function createPlan(definition: Definition): Plan {
  const graph = new DirectedGraph();
  const vertices = new Map<Digest, PlannedVertex>();
  const order: Digest[] = [];
  if (definition.head === null) return { head: null, vertices, order, graph };

  // Iterative post-order walk: Dockerfiles with hundreds of steps make deep chains.
  const stack: { digest: Digest; expanded: boolean }[] = [{ digest: definition.head.digest, expanded: false }];
  const expanding = new Set<Digest>();
  while (stack.length > 0) {
    const top = stack.pop() as { digest: Digest; expanded: boolean };
    if (vertices.has(top.digest)) continue;
    const op = definition.ops.get(top.digest);
    if (op === undefined) throw new PlanError(`Cannot plan the build: op "${top.digest}" is used but not defined`);
    if (top.expanded) {
      vertices.set(top.digest, plannedVertex(definition, top.digest, op));
      order.push(top.digest);
      continue;
    }
    if (expanding.has(top.digest)) throw new PlanError(`Cannot plan the build: op "${top.digest}" depends on itself`);
    expanding.add(top.digest);
    stack.push({ digest: top.digest, expanded: true });
    for (const input of opInputs(op)) {
      if (!vertices.has(input.digest)) stack.push({ digest: input.digest, expanded: false });
    }
  }
  for (const digest of order) graph.addNode(digest);
  for (const [digest, planned] of vertices) {
    for (const input of planned.vertex.inputs) {
      if (!graph.hasDirectedEdge(input.digest, digest)) graph.addDirectedEdge(input.digest, digest);
    }
  }
  return { head: definition.head, vertices, order, graph };
}

function plannedVertex(definition: Definition, digest: Digest, op: Op): PlannedVertex {
  const metadata = definition.metadata.get(digest) ?? {};
  const locations: readonly SourceLocation[] = definition.locations.get(digest) ?? [];
  const vertex: SolverVertex = { digest, op, metadata, inputs: opInputs(op) };
  return { digest, vertex, locations, name: metadata.name ?? describeOp(op) };
}

/** The name progress shows for an op without a `metadata.name`. */
export function describeOp(op: Op): string {
  switch (op.kind) {
    case "source":
      return op.identifier;
    case "exec":
      return op.meta.args.join(" ");
    case "file":
      return `file (${op.actions.map((a) => a.kind).join(", ")})`;
    case "merge":
      return `merge (${op.inputs.length} inputs)`;
    case "diff":
      return "diff";
    default:
      return assertNever(op, "op kind");
  }
}
