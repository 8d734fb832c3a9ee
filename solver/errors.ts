import { KilnError, type Digest, type SourceLocation } from "./llb/index.js";

/** What a VertexError says about the vertex that failed. */
export interface FailedVertex {
  readonly digest: Digest;
  readonly name: string;
  readonly locations: readonly SourceLocation[];
}

/**
 * A vertex could not be solved: its runner's `cacheMap`, `run` or a content checksum it asked for
 * threw. The original error is kept as `cause` (an ExecError, a RegistryError…); `locations` are
 * the Dockerfile ranges the Definition's source map gives for `digest`, so a renderer can show
 * `Dockerfile:12` with a code frame. Code `KILN_VERTEX_FAILED`; message `${vertexName}: ${cause}`.
 */
export class VertexError extends KilnError {
  readonly digest: Digest;
  readonly vertexName: string;
  readonly locations: readonly SourceLocation[];

  constructor(vertex: FailedVertex, cause: unknown) {
    super("KILN_VERTEX_FAILED", `${vertex.name}: ${messageOf(cause)}`, { cause });
    this.digest = vertex.digest;
    this.vertexName = vertex.name;
    this.locations = vertex.locations;
  }
}

/** A Definition the solver cannot walk (a missing input, an input output that does not exist). */
export class PlanError extends KilnError {
  constructor(message: string) {
    super("KILN_SOLVE_INVALID_DEFINITION", message);
  }
}

/** A runner broke the OpRunner contract (results of the wrong shape, too few outputs). */
export class RunnerContractError extends KilnError {
  constructor(message: string) {
    super("KILN_SOLVE_RUNNER_CONTRACT", message);
  }
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
