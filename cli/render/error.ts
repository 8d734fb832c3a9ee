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
  const parts: string[] = [];
  for (const e of causes(error)) {
    if (hasFrontendRanges(e) && e.source !== undefined && e.ranges.length > 0) parts.push(renderCodeFrame(e.source.toSourceInfo(), e.ranges));
    if (hasLocations(e)) for (const l of e.locations) parts.push(renderCodeFrame(l.source, l.ranges));
    if (hasOutputTail(e) && e.outputTail.length > 0) parts.push(`${e.outputTail.map((l) => `  ${l}`).join("\n")}\n`);
  }
  const message = error instanceof Error ? error.message : String(error);
  parts.push(`error: ${message}\n`);
  if (options.debug === true && error instanceof Error && error.stack !== undefined) parts.push(`${error.stack}\n`);
  return parts.join("");
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

function hasOutputTail(e: unknown): e is WithOutputTail {
  return isKilnError(e) && Array.isArray((e as unknown as Partial<WithOutputTail>).outputTail);
}
