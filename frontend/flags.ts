import { FrontendError } from "./errors.js";

/** What an instruction accepts: each flag's kind. `strings` may repeat; the others may appear once. */
export type FlagSpec = Readonly<Record<string, "string" | "bool" | "strings">>;

/** Parsed flags: strings by name, repeated flags as arrays, bools as true/false; absent flags are missing. */
export interface ParsedFlags {
  readonly strings: ReadonlyMap<string, string>;
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly bools: ReadonlyMap<string, boolean>;
}

/** The result for an instruction without flags (shared: the maps are read-only). */
const NO_FLAGS: ParsedFlags = { strings: new Map(), lists: new Map(), bools: new Map() };

/**
 * Parses `--name=value` words against `spec` as BuildKit's BFlags does: unknown flags, repeated
 * single flags, a string flag without a value and a bool flag with a value other than true/false
 * are errors (FrontendError without a range: the caller adds the instruction's).
 */
export function parseFlags(keyword: string, words: readonly string[], spec: FlagSpec): ParsedFlags {
  if (words.length === 0) return NO_FLAGS;
  const strings = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const bools = new Map<string, boolean>();
  const seen = new Set<string>();
  const known = Object.keys(spec).sort();
  for (const word of words) {
    if (!word.startsWith("--")) throw new FrontendError("KILN_PARSE_FLAG", `Cannot parse ${keyword} flag "${word}": flags start with "--"`);
    const body = word.slice(2);
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const value = eq === -1 ? undefined : body.slice(eq + 1);
    const kind = spec[name];
    if (kind === undefined) {
      const hint = known.length === 0 ? `${keyword} takes no flags` : `${keyword} accepts ${known.map((k) => `--${k}`).join(", ")}`;
      throw new FrontendError("KILN_PARSE_UNKNOWN_FLAG", `Cannot use flag "--${name}" with ${keyword}: unknown flag`, { hint });
    }
    if (kind !== "strings" && seen.has(name)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use flag "--${name}" twice in ${keyword}`);
    seen.add(name);
    switch (kind) {
      case "bool": {
        const v = value === undefined ? "true" : value.toLowerCase();
        if (v !== "true" && v !== "false") throw new FrontendError("KILN_PARSE_FLAG", `Cannot use "--${name}=${value ?? ""}": expected true or false`);
        bools.set(name, v === "true");
        break;
      }
      case "string":
        if (value === undefined) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use flag "--${name}" without a value: write --${name}=VALUE`);
        strings.set(name, value);
        break;
      case "strings":
        if (value === undefined) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use flag "--${name}" without a value: write --${name}=VALUE`);
        lists.set(name, [...(lists.get(name) ?? []), value]);
        break;
    }
  }
  return { strings, lists, bools };
}
