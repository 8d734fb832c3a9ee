import type { Digest } from "../../solver/llb/index.js";
import { formatReason } from "../../solver/cache-explain.js";
import type { ProgressEvent } from "../../solver/progress.js";

/** How many output lines of a running step the live view keeps (the full output is on disk). */
export const TAIL_LINES = 6;
/** A longer line is cut for the live view only. */
const MAX_LINE = 400;

/** Bytes moving for one vertex: a layer being pulled or pushed. */
export interface Transfer {
  readonly id: string;
  current: number;
  total: number | undefined;
  /** When and at how many bytes it was first seen, for the rate. */
  readonly firstTime: number;
  readonly firstCurrent: number;
  time: number;
}

/** What the live view knows about one vertex. */
export interface VertexView {
  readonly digest: Digest;
  readonly number: number;
  name: string;
  state: "running" | "done" | "cached" | "failed";
  started: number;
  finished: number | undefined;
  error: string | undefined;
  /** The last TAIL_LINES complete lines of output, oldest first. */
  readonly tail: string[];
  /** An unterminated last line. */
  partial: string;
  readonly transfers: Map<string, Transfer>;
}

/** Step counts for the header and the summary. */
export interface ProgressCounts {
  readonly total: number;
  readonly finished: number;
  readonly running: number;
  readonly cached: number;
  readonly failed: number;
}

/**
 * The state a progress view draws, updated event by event in O(1) per event and never drawn by
 * itself: views read it at their own pace (the tty view a few times a second), so a chatty step
 * costs a string split, not a redraw. `version` changes whenever anything visible did.
 */
export class ProgressModel {
  readonly started: number;
  readonly vertices = new Map<Digest, VertexView>();
  /** Vertices in the order they finished (done, cached or failed). */
  readonly finishedOrder: VertexView[] = [];
  readonly warnings: string[] = [];
  /** `--explain-cache`: why each step ran, in the order explained, as `STEP: reason; reason`. */
  readonly explanations: string[] = [];
  version = 0;

  constructor(now = Date.now()) {
    this.started = now;
  }

  push(event: ProgressEvent): void {
    this.version++;
    if (event.type === "warning") {
      this.warnings.push(event.rule === undefined ? event.message : `${event.rule}: ${event.message}`);
      return;
    }
    if (event.type === "vertex.explain") {
      this.explanations.push(`${event.name}: ${event.reasons.map(formatReason).join("; ")}`);
      return;
    }
    const vertex = this.#vertex(event.digest, event.time);
    switch (event.type) {
      case "vertex.started":
        vertex.name = event.name;
        vertex.started = event.time;
        break;
      case "vertex.cached":
        vertex.name = event.name;
        this.#finish(vertex, "cached", event.time);
        break;
      case "vertex.completed":
        vertex.name = event.name;
        vertex.started = event.started;
        this.#finish(vertex, "done", event.time);
        break;
      case "vertex.failed":
        vertex.name = event.name;
        vertex.started = event.started;
        vertex.error = event.error;
        this.#finish(vertex, "failed", event.time);
        break;
      case "vertex.log":
        appendOutput(vertex, event.data);
        break;
      case "vertex.bytes": {
        const transfer = vertex.transfers.get(event.id);
        if (transfer === undefined) {
          vertex.transfers.set(event.id, {
            id: event.id, current: event.current, total: event.total, firstTime: event.time, firstCurrent: event.current, time: event.time,
          });
        } else {
          transfer.current = event.current;
          transfer.total = event.total ?? transfer.total;
          transfer.time = event.time;
        }
        break;
      }
      default: {
        const never: never = event;
        throw new TypeError(`Unexpected progress event ${JSON.stringify(never)}`);
      }
    }
  }

  /** Vertices still running, in the order they started. */
  running(): VertexView[] {
    return [...this.vertices.values()].filter((v) => v.state === "running");
  }

  counts(): ProgressCounts {
    let running = 0;
    let cached = 0;
    let failed = 0;
    for (const v of this.vertices.values()) {
      if (v.state === "running") running++;
      else if (v.state === "cached") cached++;
      else if (v.state === "failed") failed++;
    }
    return { total: this.vertices.size, finished: this.vertices.size - running, running, cached, failed };
  }

  #vertex(digest: Digest, time: number): VertexView {
    let vertex = this.vertices.get(digest);
    if (vertex === undefined) {
      vertex = {
        digest, number: this.vertices.size + 1, name: "", state: "running", started: time, finished: undefined,
        error: undefined, tail: [], partial: "", transfers: new Map(),
      };
      this.vertices.set(digest, vertex);
    }
    return vertex;
  }

  #finish(vertex: VertexView, state: "done" | "cached" | "failed", time: number): void {
    if (vertex.state !== "running") return;
    vertex.state = state;
    vertex.finished = time;
    if (vertex.partial !== "") {
      pushLine(vertex, vertex.partial);
      vertex.partial = "";
    }
    this.finishedOrder.push(vertex);
  }
}

/** Splits output into lines; a carriage return (a progress bar redrawing itself) keeps only what follows it. */
function appendOutput(vertex: VertexView, data: string): void {
  const pieces = (vertex.partial + data).split("\n");
  vertex.partial = pieces.pop() ?? "";
  // Only the last TAIL_LINES can show: skip splitting the rest of a huge chunk.
  for (const line of pieces.slice(-TAIL_LINES)) pushLine(vertex, line);
  if (vertex.partial.length > MAX_LINE * 4) vertex.partial = vertex.partial.slice(-MAX_LINE);
}

function pushLine(vertex: VertexView, line: string): void {
  const cr = line.lastIndexOf("\r", line.length - 2);
  const visible = (cr >= 0 ? line.slice(cr + 1) : line).replace(/\r$/, "");
  vertex.tail.push(visible.length > MAX_LINE ? `${visible.slice(0, MAX_LINE)}…` : visible);
  if (vertex.tail.length > TAIL_LINES) vertex.tail.shift();
}

/** `1.2s`, `2m03s`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
}

/** `512B`, `3.4kB`, `12.0MB`, as docker shows sizes (powers of 1000). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes}B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)}${units[unit]}`;
}

/** `3.4MB / 12.0MB 1.2MB/s` for one transfer. */
export function formatTransfer(t: Transfer): string {
  const seconds = (t.time - t.firstTime) / 1000;
  const rate = seconds > 0 ? ` ${formatBytes(Math.round((t.current - t.firstCurrent) / seconds))}/s` : "";
  return `${formatBytes(t.current)}${t.total === undefined ? "" : ` / ${formatBytes(t.total)}`}${rate}`;
}
