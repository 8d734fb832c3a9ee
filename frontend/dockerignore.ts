import { cleanPath, createPathMatcher, isKilnError, type PathMatcher } from "../solver/llb/index.js";
import { FrontendError } from "./errors.js";
import type { SourceFile } from "./source-file.js";

/** One pattern of a .dockerignore file and the 1-based line it came from. */
export interface IgnorePattern {
  readonly pattern: string;
  readonly line: number;
}

/**
 * Reads a .dockerignore as moby/patternmatcher's ignorefile.ReadAll does: a BOM is dropped, lines
 * starting with `#` are comments, lines are trimmed and blank ones skipped, `!` marks an
 * exception, and each pattern is cleaned (`filepath.Clean`, a leading "/" removed).
 * Throws FrontendError (with the line) for a pattern the matcher rejects.
 */
export function parseDockerignore(source: SourceFile): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  for (let line = 1; line <= source.lineCount; line++) {
    let text = source.lineText(line);
    if (line === 1) text = text.replace(/^\uFEFF/u, "");
    if (text.startsWith("#")) continue;
    text = text.trim();
    if (text === "") continue;
    const invert = text.startsWith("!");
    if (invert) text = text.slice(1).trim();
    if (text !== "") {
      text = cleanPath(text);
      if (text.length > 1 && text.startsWith("/")) text = text.slice(1);
    }
    const pattern = invert ? `!${text}` : text;
    try {
      createPathMatcher([pattern]);
    } catch (error) {
      throw new FrontendError(isKilnError(error) ? error.code : "KILN_DOCKERIGNORE_PATTERN", `Cannot use .dockerignore pattern "${pattern}": ${error instanceof Error ? error.message : String(error)}`, {
        ranges: [source.lineRange(line)],
        source,
        cause: error,
      });
    }
    out.push({ pattern, line });
  }
  return out;
}

/** A matcher for the patterns of a parsed .dockerignore. */
export function dockerignoreMatcher(patterns: readonly IgnorePattern[]): PathMatcher {
  return createPathMatcher(patterns.map((p) => p.pattern));
}

/**
 * The pattern that decides that `path` (relative to the context, no leading "/") is excluded:
 * the last one whose addition turned the verdict to "excluded" (with last-match-wins, the one a
 * person should edit). Undefined when the patterns do not exclude `path`.
 */
export function excludingPattern(patterns: readonly IgnorePattern[], path: string): IgnorePattern | undefined {
  const clean = cleanPath(path).replace(/^\/+/u, "");
  if (!dockerignoreMatcher(patterns).excludes(clean)) return undefined;
  let decided: IgnorePattern | undefined;
  let excluded = false;
  for (let i = 0; i < patterns.length; i++) {
    const now = dockerignoreMatcher(patterns.slice(0, i + 1)).excludes(clean);
    if (now && !excluded) decided = patterns[i];
    excluded = now;
  }
  return decided;
}
