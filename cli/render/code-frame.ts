import type { SourceInfo, SourceRange } from "../../solver/llb/index.js";

/** How many lines of context to show around the marked ones. */
const CONTEXT_LINES = 2;

/**
 * Renders the lines of `source` covered by `ranges` with a little context, marking the covered
 * lines with `>>>` (BuildKit's style), and a caret under the start column when the range covers
 * less than the whole of a single line:
 *
 * ```
 * Dockerfile:12
 * --------------------
 *   10 |     WORKDIR /app
 *   12 | >>> RUN make test
 * --------------------
 * ```
 */
export function renderCodeFrame(source: SourceInfo, ranges: readonly SourceRange[]): string {
  const lines = source.data.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  if (ranges.length === 0) return `${source.name}\n`;
  const first = Math.min(...ranges.map((r) => r.start.line));
  const last = Math.max(...ranges.map((r) => r.end.line));
  const marked = new Set<number>();
  for (const r of ranges) for (let l = r.start.line; l <= r.end.line; l++) marked.add(l);
  const from = Math.max(1, first - CONTEXT_LINES);
  const to = Math.min(lines.length, last + CONTEXT_LINES);
  const width = Math.max(3, String(to).length);
  const rule = "-".repeat(20);
  const out = [`${source.name}:${first}`, rule];
  for (let line = from; line <= to; line++) {
    const text = lines[line - 1] ?? "";
    const gutter = ` ${String(line).padStart(width)} | `;
    out.push(`${gutter}${marked.has(line) ? ">>> " : "    "}${text}`);
    const single = ranges.find((r) => r.start.line === line && r.end.line === line);
    if (single !== undefined && (single.start.character > 0 || single.end.character < text.length) && single.end.character > single.start.character) {
      out.push(`${" ".repeat(gutter.length + 4 + single.start.character)}${"^".repeat(Math.max(1, single.end.character - single.start.character))}`);
    }
  }
  out.push(rule);
  return `${out.join("\n")}\n`;
}
