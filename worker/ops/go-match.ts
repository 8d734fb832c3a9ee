import { KilnError } from "../../solver/llb/index.js";

/** A wildcard pattern Go's filepath.Match rejects (ErrBadPattern). */
export class BadPatternError extends KilnError {
  constructor(pattern: string) {
    super("KILN_PATTERN_INVALID", `Cannot use wildcard pattern "${pattern}": it is malformed (an unterminated "[" or a trailing "\\")`);
  }
}

/**
 * Whether `name` matches `pattern` with the semantics of Go's `filepath.Match` on Linux (the
 * function BuildKit uses for COPY wildcards): `*` is any run of non-`/` characters, `?` one
 * non-`/` character, `[...]` a class (`^` negates, `a-z` ranges, `\` escapes), `\c` the
 * character c. The whole name must match. Throws BadPatternError for a malformed pattern.
 */
export function goMatch(pattern: string, name: string): boolean {
  let pat = [...pattern];
  let str = [...name];
  outer: while (pat.length > 0) {
    const { star, chunk, rest } = scanChunk(pat);
    pat = rest;
    if (star && chunk.length === 0) return !str.includes("/");
    const direct = matchChunk(chunk, str, pattern);
    if (direct !== undefined && (direct.length === 0 || pat.length > 0)) {
      str = direct;
      continue;
    }
    if (star) {
      for (let i = 0; i < str.length && str[i] !== "/"; i++) {
        const t = matchChunk(chunk, str.slice(i + 1), pattern);
        if (t !== undefined) {
          if (pat.length === 0 && t.length > 0) continue;
          str = t;
          continue outer;
        }
      }
    }
    validateRest(pat, pattern);
    return false;
  }
  return str.length === 0;
}

/** Whether a path component holds an unescaped wildcard character (fsutil's containsWildcards). */
export function containsWildcards(component: string): boolean {
  for (let i = 0; i < component.length; i++) {
    const ch = component[i];
    if (ch === "\\") i++;
    else if (ch === "*" || ch === "?" || ch === "[") return true;
  }
  return false;
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let i = 0;
  let star = false;
  while (i < pattern.length && pattern[i] === "*") {
    i++;
    star = true;
  }
  const p = pattern.slice(i);
  let inRange = false;
  let j = 0;
  scan: for (; j < p.length; j++) {
    switch (p[j]) {
      case "\\":
        if (j + 1 < p.length) j++;
        break;
      case "[":
        inRange = true;
        break;
      case "]":
        inRange = false;
        break;
      case "*":
        if (!inRange) break scan;
        break;
    }
  }
  return { star, chunk: p.slice(0, j), rest: p.slice(j) };
}

/** The rest of `s` after `chunk` matched its start, or undefined when it does not. */
function matchChunk(chunkIn: string[], sIn: string[], pattern: string): string[] | undefined {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    switch (chunk[0]) {
      case "[": {
        const r = failed ? "" : (s[0] as string);
        if (!failed) s = s.slice(1);
        chunk = chunk.slice(1);
        let negated = false;
        if (chunk[0] === "^") {
          negated = true;
          chunk = chunk.slice(1);
        }
        let match = false;
        let nrange = 0;
        for (;;) {
          if (chunk.length > 0 && chunk[0] === "]" && nrange > 0) {
            chunk = chunk.slice(1);
            break;
          }
          const lo = getEsc(chunk, pattern);
          chunk = lo.rest;
          let hi = lo.ch;
          if (chunk[0] === "-") {
            const h = getEsc(chunk.slice(1), pattern);
            hi = h.ch;
            chunk = h.rest;
          }
          if (lo.ch <= r && r <= hi) match = true;
          nrange++;
        }
        if (match === negated) failed = true;
        break;
      }
      case "?":
        if (!failed) {
          if (s[0] === "/") failed = true;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
        break;
      default: {
        let literal = chunk[0];
        if (literal === "\\") {
          chunk = chunk.slice(1);
          if (chunk.length === 0) throw new BadPatternError(pattern);
          literal = chunk[0];
        }
        if (!failed) {
          if (literal !== s[0]) failed = true;
          s = s.slice(1);
        }
        chunk = chunk.slice(1);
      }
    }
  }
  return failed ? undefined : s;
}

function getEsc(chunk: string[], pattern: string): { ch: string; rest: string[] } {
  if (chunk.length === 0 || chunk[0] === "-" || chunk[0] === "]") throw new BadPatternError(pattern);
  let i = 0;
  if (chunk[0] === "\\") {
    i = 1;
    if (chunk.length === 1) throw new BadPatternError(pattern);
  }
  const ch = chunk[i] as string;
  const rest = chunk.slice(i + 1);
  if (rest.length === 0) throw new BadPatternError(pattern);
  return { ch, rest };
}

/** Go reports a malformed remainder even when the match already failed. */
function validateRest(pat: string[], pattern: string): void {
  let rest = pat;
  while (rest.length > 0) {
    const { chunk, rest: next } = scanChunk(rest);
    rest = next;
    matchChunk(chunk, [], pattern);
  }
}
