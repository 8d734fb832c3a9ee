import { KilnError } from "./kiln-error.js";

/** Compiled .dockerignore-style patterns. */
export interface PathMatcher {
  /** Whether the slash-separated relative path (no leading "./" or "/") is excluded: the last pattern that matches it or one of its parent directories decides. */
  excludes(path: string): boolean;
  /** Whether any pattern is an exception ("!…"): then a walker must descend into excluded directories. */
  readonly hasExceptions: boolean;
}

/** A pattern that Go's `filepath.Match` would reject (unterminated class, trailing escape, a bare "!"). */
export class PathPatternError extends KilnError {
  readonly pattern: string;

  constructor(pattern: string, why: string) {
    super("KILN_PATH_PATTERN_INVALID", `Cannot use pattern "${pattern}": ${why}`);
    this.pattern = pattern;
  }
}

/**
 * Compiles patterns with the semantics of moby/patternmatcher as BuildKit applies `.dockerignore`
 * and `COPY --exclude`:
 * - each pattern is trimmed (empty ones are skipped), a leading `!` makes it an exception, the rest
 *   is cleaned like Go's `filepath.Clean` and a leading `/` is removed (so `./a`, `/a` and `a//b/..`
 *   all mean `a`);
 * - `*` matches any run of non-slash characters, `?` one non-slash character, `[...]` a class
 *   (`[^...]` negated, `a-z` ranges, `\` escapes), `\x` the character x;
 * - `**` matches any number of directories (including none); `**` at the end matches everything below;
 * - a path is excluded when the last pattern matching it, or matching one of its parent
 *   directories, is not an exception.
 *
 * Where moby's regexp translation diverges from `filepath.Match` on pathological input
 * (`\d` becoming a digit class, `*` inside a class), this follows `filepath.Match`.
 * Throws PathPatternError for a malformed pattern, as `patternmatcher.New` returns an error.
 */
export function createPathMatcher(patterns: readonly string[]): PathMatcher {
  const compiled: CompiledPattern[] = [];
  for (const raw of patterns) {
    let text = raw.trim();
    if (text === "") continue;
    let exception = false;
    if (text.startsWith("!")) {
      if (text.length === 1) throw new PathPatternError(raw, "an exception needs a pattern after \"!\"");
      exception = true;
      text = text.slice(1);
    }
    text = cleanPath(text);
    if (text.length > 1 && text.startsWith("/")) text = text.slice(1);
    compiled.push(compilePattern(text, exception, raw));
  }
  const hasExceptions = compiled.some((p) => p.exception);
  return {
    hasExceptions,
    excludes(path: string): boolean {
      const file = needsCleaning(path) ? stripRoot(cleanPath(path)) : path;
      if (file === "." || file === "") return false;
      const slash = file.lastIndexOf("/");
      const parents = slash === -1 ? [] : parentPrefixes(file.slice(0, slash));
      let matched = false;
      for (const pattern of compiled) {
        // As patternmatcher: an inclusion cannot change an already excluded path, nor an exception an included one.
        if (pattern.exception !== matched) continue;
        let match = pattern.test(file);
        if (!match) for (const parent of parents) if (pattern.test(parent)) { match = true; break; }
        if (match) matched = !pattern.exception;
      }
      return matched;
    },
  };
}

interface CompiledPattern {
  readonly exception: boolean;
  test(path: string): boolean;
}

/** `a/b/c` → `a`, `a/b`, `a/b/c`. */
function parentPrefixes(dir: string): string[] {
  const out: string[] = [];
  let index = dir.indexOf("/");
  while (index !== -1) {
    out.push(dir.slice(0, index));
    index = dir.indexOf("/", index + 1);
  }
  out.push(dir);
  return out;
}

type MatchType = "exact" | "prefix" | "suffix" | "regexp";

function compilePattern(pattern: string, exception: boolean, raw: string): CompiledPattern {
  validateGlob(pattern, raw);
  let regex = "^";
  let type: MatchType = "exact";
  const chars = Array.from(pattern);
  let i = 0;
  for (let step = 0; i < chars.length; step++) {
    const ch = chars[i++] as string;
    if (ch === "*") {
      if (chars[i] === "*") {
        i++;
        if (chars[i] === "/") i++; // "**/" is "**"
        if (i >= chars.length) {
          if (type === "exact") type = "prefix";
          else {
            regex += ".*";
            type = "regexp";
          }
        } else {
          regex += "(?:.*/)?";
          type = "regexp";
        }
        if (step === 0) type = "suffix";
      } else {
        regex += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      regex += "[^/]";
      type = "regexp";
    } else if (ch === "\\") {
      const next = chars[i];
      if (next === undefined) regex += "\\\\";
      else {
        regex += escapeLiteral(next);
        i++;
        type = "regexp";
      }
    } else if (ch === "[") {
      const end = classEnd(chars, i);
      regex += classRegex(chars.slice(i, end));
      i = end + 1;
      type = "regexp";
    } else if (ch === "]") {
      regex += "\\]";
      type = "regexp";
    } else {
      regex += escapeLiteral(ch);
    }
  }
  switch (type) {
    case "exact":
      return { exception, test: (path) => path === pattern };
    case "prefix": {
      const prefix = pattern.slice(0, -2);
      return { exception, test: (path) => path.startsWith(prefix) };
    }
    case "suffix": {
      const suffix = pattern.slice(2);
      return { exception, test: (path) => path.endsWith(suffix) || (suffix.startsWith("/") && path === suffix.slice(1)) };
    }
    case "regexp": {
      let re: RegExp;
      try {
        re = new RegExp(regex + "$", "u");
      } catch (error) {
        throw new PathPatternError(raw, `it does not compile (${(error as Error).message})`);
      }
      return { exception, test: (path) => re.test(path) };
    }
  }
}

const REGEX_SYNTAX = new Set(["\\", "^", "$", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "/"]);

function escapeLiteral(ch: string): string {
  return REGEX_SYNTAX.has(ch) ? `\\${ch}` : ch;
}

function codePointEscape(ch: string): string {
  return `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
}

/** Index of the `]` closing the class whose content starts at `start` (validated beforehand). */
function classEnd(chars: readonly string[], start: number): number {
  let i = start;
  if (chars[i] === "^") i++;
  let ranges = 0;
  for (;;) {
    if (chars[i] === "]" && ranges > 0) return i;
    i += chars[i] === "\\" ? 2 : 1;
    if (chars[i] === "-") i += chars[i + 1] === "\\" ? 3 : 2;
    ranges++;
  }
}

/** The JS class for the content of a `[...]` class (without the brackets). */
function classRegex(content: readonly string[]): string {
  let out = "[";
  let i = 0;
  if (content[0] === "^") {
    out += "^";
    i++;
  }
  const take = (): string => {
    const ch = content[i++] as string;
    return ch === "\\" ? (content[i++] as string) : ch;
  };
  while (i < content.length) {
    out += codePointEscape(take());
    if (content[i] === "-") {
      i++;
      out += "-" + codePointEscape(take());
    }
  }
  return out + "]";
}

/** Rejects what Go's `filepath.Match` rejects: an unterminated or malformed class, a trailing `\`. */
function validateGlob(pattern: string, raw: string): void {
  const chars = Array.from(pattern);
  let i = 0;
  const escaped = (what: string): string => {
    const ch = chars[i];
    if (ch === undefined || ch === "-" || ch === "]") throw new PathPatternError(raw, `a character class has a bad ${what}`);
    i++;
    if (ch !== "\\") return ch;
    const next = chars[i++];
    if (next === undefined) throw new PathPatternError(raw, "it ends with an escape character");
    return next;
  };
  while (i < chars.length) {
    const ch = chars[i++];
    if (ch === "\\") {
      if (i >= chars.length) throw new PathPatternError(raw, "it ends with an escape character");
      i++;
    } else if (ch === "[") {
      if (chars[i] === "^") i++;
      let ranges = 0;
      for (;;) {
        if (i >= chars.length) throw new PathPatternError(raw, "a character class is not closed with \"]\"");
        if (chars[i] === "]" && ranges > 0) {
          i++;
          break;
        }
        const lo = escaped("character");
        if (chars[i] === "-") {
          i++;
          const hi = escaped("range end");
          if ((hi.codePointAt(0) ?? 0) < (lo.codePointAt(0) ?? 0)) throw new PathPatternError(raw, `the range "${lo}-${hi}" is out of order`);
        }
        ranges++;
      }
    }
  }
}

function needsCleaning(path: string): boolean {
  return path.startsWith("/") || path.startsWith("./") || path.endsWith("/") || path.includes("//") || path.includes("/./") || path.includes("..") || path.endsWith("/.");
}

function stripRoot(path: string): string {
  return path.length > 1 && path.startsWith("/") ? path.slice(1) : path;
}

/**
 * Go's `path.Clean`: one slash between elements, no `.` elements, `..` resolved lexically (and
 * dropped at the root), no trailing slash; the empty path is ".".
 */
export function cleanPath(path: string): string {
  if (path === "") return ".";
  const rooted = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}
