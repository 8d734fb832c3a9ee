import type { Digest } from "../../solver/llb/index.js";
import { formatReason } from "../../solver/cache-explain.js";
import type { ProgressEvent } from "../../solver/progress.js";

/**
 * BuildKit's plain progress: every vertex gets a number on first sight, and every line starts
 * with it, so the output is stable and grep-friendly:
 *
 * ```
 * #3 [builder 2/3] RUN echo hi > /out
 * #3 0.112 hi
 * #3 DONE 0.4s
 * #4 [stage-1 2/3] COPY --from=builder /out /out
 * #4 CACHED
 * ```
 */
export class PlainProgress {
  readonly #write: (text: string) => void;
  readonly #numbers = new Map<Digest, number>();
  readonly #started = new Map<Digest, number>();
  #last: Digest | undefined;
  readonly #warnings: string[] = [];

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Renders one event. */
  push(event: ProgressEvent): void {
    if (event.type === "warning") {
      // BuildKit's "RuleName: message (Dockerfile:12)".
      const where = event.locations[0];
      const line = where?.ranges[0]?.start.line;
      const at = where === undefined || line === undefined ? "" : ` (${where.source.name}:${line})`;
      this.#warnings.push(`${event.rule === undefined ? "" : `${event.rule}: `}${event.message}${at}`);
      return;
    }
    const n = this.#number(event.digest);
    switch (event.type) {
      case "vertex.started":
        this.#started.set(event.digest, event.time);
        this.#line(event.digest, `#${n} ${event.name}`);
        break;
      case "vertex.cached":
        this.#line(event.digest, `#${n} ${event.name}`);
        this.#line(event.digest, `#${n} CACHED`);
        break;
      case "vertex.completed":
        this.#line(event.digest, `#${n} DONE ${seconds(event.time - event.started)}`);
        break;
      case "vertex.failed":
        this.#line(event.digest, `#${n} ERROR: ${event.error}`);
        break;
      case "vertex.log": {
        const since = seconds(event.time - (this.#started.get(event.digest) ?? event.time), 3).replace(/s$/, "");
        for (const line of event.data.replace(/\n$/, "").split("\n")) this.#line(event.digest, `#${n} ${since} ${line}`);
        break;
      }
      case "vertex.bytes":
        break;
      case "vertex.explain":
        // `--explain-cache`: one line per reason, before the step's own lines.
        for (const reason of event.reasons) this.#line(event.digest, `#${n} explain: ${event.name}: ${formatReason(reason)}`);
        break;
      default: {
        const never: never = event;
        throw new TypeError(`Unexpected progress event ${JSON.stringify(never)}`);
      }
    }
  }

  /** Lists the warnings collected during the build. */
  finish(): void {
    if (this.#warnings.length === 0) return;
    this.#write(`\n${this.#warnings.length} warning${this.#warnings.length === 1 ? "" : "s"} found:\n`);
    for (const w of this.#warnings) this.#write(` - ${w}\n`);
  }

  #number(digest: Digest): number {
    let n = this.#numbers.get(digest);
    if (n === undefined) {
      n = this.#numbers.size + 1;
      this.#numbers.set(digest, n);
    }
    return n;
  }

  #line(digest: Digest, text: string): void {
    // A blank line between vertices, as BuildKit separates interleaved output.
    if (this.#last !== undefined && this.#last !== digest) this.#write("\n");
    this.#last = digest;
    this.#write(`${text}\n`);
  }
}

function seconds(ms: number, digits = 1): string {
  return `${(Math.max(0, ms) / 1000).toFixed(digits)}s`;
}
