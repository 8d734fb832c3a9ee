import type { Digest, SourceLocation } from "./llb/index.js";
import type { CacheMissReason } from "./cache-explain.js";

/**
 * What a build reports as it goes. Vertex events carry the op digest and the name progress shows
 * (`[builder 2/3] RUN make`); times are milliseconds since the epoch, so overlapping steps show
 * as overlapping intervals. Exporters and pulls report as vertices of their own too (with a
 * digest of their description), so one renderer draws everything.
 */
export type ProgressEvent =
  | { readonly type: "vertex.started"; readonly digest: Digest; readonly name: string; readonly time: number }
  | { readonly type: "vertex.cached"; readonly digest: Digest; readonly name: string; readonly time: number }
  | {
      readonly type: "vertex.completed";
      readonly digest: Digest;
      readonly name: string;
      readonly started: number;
      readonly time: number;
    }
  | {
      readonly type: "vertex.failed";
      readonly digest: Digest;
      readonly name: string;
      readonly started: number;
      readonly time: number;
      readonly error: string;
    }
  | {
      readonly type: "vertex.log";
      readonly digest: Digest;
      readonly stream: "stdout" | "stderr";
      readonly data: string;
      readonly time: number;
    }
  | {
      readonly type: "vertex.bytes";
      readonly digest: Digest;
      /** What is moving, e.g. a layer digest. */
      readonly id: string;
      readonly current: number;
      readonly total?: number;
      readonly time: number;
    }
  | {
      /** Why a step runs instead of being CACHED; only with `--explain-cache`, before its `vertex.started`. */
      readonly type: "vertex.explain";
      readonly digest: Digest;
      readonly name: string;
      readonly reasons: readonly CacheMissReason[];
      readonly time: number;
    }
  | {
      readonly type: "warning";
      readonly rule?: string;
      readonly message: string;
      readonly locations: readonly SourceLocation[];
      readonly time: number;
    };

/** Receives progress events. Must not throw and must not block: it runs on the build's hot path. */
export type ProgressSink = (event: ProgressEvent) => void;

/** The progress handle one running vertex gets: its logs and byte counts, already tagged with it. */
export interface VertexProgress {
  log(stream: "stdout" | "stderr", data: string): void;
  bytes(id: string, current: number, total?: number): void;
}

/** A VertexProgress that tags events with `digest` and sends them to `sink`. */
export function vertexProgress(sink: ProgressSink, digest: Digest): VertexProgress {
  return {
    log: (stream, data) => sink({ type: "vertex.log", digest, stream, data, time: Date.now() }),
    bytes: (id, current, total) =>
      sink({ type: "vertex.bytes", digest, id, current, ...(total === undefined ? {} : { total }), time: Date.now() }),
  };
}

/**
 * Runs `work` as a progress vertex of its own (an export, a push): started, then completed or
 * failed. The digest is derived from the name by the caller.
 */
export async function reportVertex<T>(
  sink: ProgressSink,
  digest: Digest,
  name: string,
  work: (progress: VertexProgress) => Promise<T>,
): Promise<T> {
  const started = Date.now();
  sink({ type: "vertex.started", digest, name, time: started });
  try {
    const result = await work(vertexProgress(sink, digest));
    sink({ type: "vertex.completed", digest, name, started, time: Date.now() });
    return result;
  } catch (error) {
    sink({ type: "vertex.failed", digest, name, started, time: Date.now(), error: error instanceof Error ? error.message : String(error) });
    throw error;
  }
}
