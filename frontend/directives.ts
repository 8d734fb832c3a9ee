import type { SourceRange } from "../solver/llb/index.js";
import { FrontendError } from "./errors.js";

/** A parser directive at the top of a Dockerfile: `# syntax=`, `# escape=` or `# check=`. */
export interface Directive {
  readonly name: "syntax" | "escape" | "check";
  readonly value: string;
  readonly range: SourceRange;
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/u;
const NAMES = new Set(["syntax", "escape", "check"]);

/**
 * Reads directives line by line as BuildKit does: they must be the first lines, each a `#`
 * comment of the form `name=value`; the first line that is not one ends the directive block for
 * good. Repeating a directive is an error. Pass lines with leading whitespace removed.
 */
export class DirectiveReader {
  readonly directives: Directive[] = [];
  #done = false;

  /** Returns the directive `line` (1-based `lineNumber`) holds, or undefined. */
  read(line: string, lineNumber: number, range: SourceRange): Directive | undefined {
    if (this.#done) return undefined;
    if (!line.startsWith("#")) {
      this.#done = true;
      return undefined;
    }
    const match = DIRECTIVE.exec(line.slice(1).replace(/^\s+/u, ""));
    const name = match?.[1]?.toLowerCase();
    if (match === null || name === undefined || !NAMES.has(name)) {
      this.#done = true;
      return undefined;
    }
    if (this.directives.some((d) => d.name === name)) {
      throw new FrontendError("KILN_PARSE_DIRECTIVE", `Cannot use the "${name}" parser directive twice: only one is allowed`, { ranges: [range] });
    }
    const directive: Directive = { name: name as Directive["name"], value: match[2] ?? "", range };
    this.directives.push(directive);
    return directive;
  }
}

/** The escape token a `# escape=` value names; throws for anything but backslash or backtick. */
export function escapeTokenOf(directive: Directive): string {
  if (directive.value !== "\\" && directive.value !== "`") {
    throw new FrontendError("KILN_PARSE_DIRECTIVE", `Cannot use escape token "${directive.value}": it must be "\\" or "\`"`, { ranges: [directive.range] });
  }
  return directive.value;
}

/** The settings of a `# check=skip=A,B;error=true;experimental=C` directive. */
export interface CheckDirective {
  /** Rule names to skip; "all" skips every rule (experimental rules are not affected, as in BuildKit). */
  readonly skip: readonly string[];
  readonly error: boolean;
  /** Experimental rules to run (they are off by default); "all" runs every one. */
  readonly experimental: readonly string[];
}

/** Parses a `# check=` value (`skip=Rule1,Rule2;error=true;experimental=all`); unknown keys are ignored. */
export function parseCheckDirective(value: string): CheckDirective {
  let skip: string[] = [];
  let error = false;
  let experimental: string[] = [];
  const list = (val: string): string[] => val.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const part of value.split(";")) {
    const [key, val = ""] = part.split("=", 2).map((s) => s.trim()) as [string, string | undefined];
    if (key.toLowerCase() === "skip") skip = list(val);
    else if (key.toLowerCase() === "error") error = val.toLowerCase() === "true";
    else if (key.toLowerCase() === "experimental") experimental = list(val);
  }
  return { skip, error, experimental };
}
