import { isKilnError, type SourceInfo, type SourceLocation, type SourceRange } from "../../solver/llb/index.js";
import { renderCodeFrame } from "./code-frame.js";

interface WithFrontendRanges {
  readonly ranges: readonly SourceRange[];
  readonly source: { toSourceInfo(): SourceInfo } | undefined;
}

interface WithLocations {
  readonly locations: readonly SourceLocation[];
}

interface WithOutputTail {
  readonly outputTail: readonly string[];
}

/**
 * Renders any error for a person: a kiln error with a Dockerfile position gets the code frame
 * (BuildKit's `Dockerfile:12` block), a failed RUN its last output lines, and every message its
 * chain of causes; anything else only its message (never a stack trace, unless `debug`).
 */
export function renderError(error: unknown, options: { debug?: boolean } = {}): string {
  // A daemon's error arrives rendered already (code frames and all): show it as the daemon drew it.
  const rendered = isKilnError(error) ? (error as unknown as { readonly rendered?: unknown }).rendered : undefined;
  if (typeof rendered === "string") return rendered;
  const parts: string[] = [];
  for (const e of causes(error)) {
    if (hasFrontendRanges(e) && e.source !== undefined && e.ranges.length > 0) parts.push(renderCodeFrame(e.source.toSourceInfo(), e.ranges));
    if (hasLocations(e)) for (const l of e.locations) parts.push(renderCodeFrame(l.source, l.ranges));
    const tail = outputTailOf(e);
    if (tail.length > 0) parts.push(`last ${tail.length} line${tail.length === 1 ? "" : "s"} of output:\n${tail.map((l) => `  ${l}`).join("\n")}\n`);
  }
  const message = error instanceof Error ? error.message : String(error);
  parts.push(`error: ${message}\n`);
  const hint = hintOf(error);
  if (hint !== undefined) parts.push(`hint: ${hint}\n`);
  if (options.debug === true && error instanceof Error && error.stack !== undefined) parts.push(`${error.stack}\n`);
  return parts.join("");
}

/** The `hint` a kiln error carries (FrontendError's "Did you mean…"), if any. */
function hintOf(error: unknown): string | undefined {
  if (!isKilnError(error)) return undefined;
  const hint = (error as unknown as { readonly hint?: unknown }).hint;
  return typeof hint === "string" && hint !== "" ? hint : undefined;
}

function* causes(error: unknown): Generator<unknown> {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    yield current;
    current = current instanceof Error ? current.cause : undefined;
  }
}

function hasFrontendRanges(e: unknown): e is WithFrontendRanges {
  return isKilnError(e) && Array.isArray((e as unknown as Partial<WithFrontendRanges>).ranges);
}

function hasLocations(e: unknown): e is WithLocations {
  return isKilnError(e) && Array.isArray((e as unknown as Partial<WithLocations>).locations);
}

/** The last output lines a failed process left: `outputTail`, or an ExecError's `output` (worker/executor). */
function outputTailOf(e: unknown): readonly string[] {
  if (!isKilnError(e)) return [];
  const withTail = e as unknown as Partial<WithOutputTail> & { readonly output?: unknown };
  if (Array.isArray(withTail.outputTail)) return withTail.outputTail;
  if (e.code === "KILN_EXEC_FAILED" && Array.isArray(withTail.output)) return withTail.output.filter((l): l is string => typeof l === "string");
  return [];
}
