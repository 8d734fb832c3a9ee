import { FrontendError } from "../errors.js";
import { parseFlags } from "../flags.js";
import type { InstructionNode } from "../parser.js";
import { baseOf } from "./base.js";
import type { HealthcheckInstruction } from "./types.js";

const UNITS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, "µs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Parses a Go duration (`30s`, `1m30s`, `1.5h`) into nanoseconds; undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gu;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    if (m.index !== consumed) return undefined;
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    consumed += m[0].length;
  }
  return consumed === text.length && consumed > 0 ? Math.round(total) : undefined;
}

function interval(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const ns = parseGoDuration(value);
  if (ns === undefined) throw new FrontendError("KILN_PARSE_FLAG", `Cannot parse --${name}="${value}": expected a duration such as 30s or 1m30s`);
  if (ns === 0) return 0;
  if (ns < 1e6) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --${name}="${value}": it cannot be less than 1ms`);
  return ns;
}

/** HEALTHCHECK [--interval --timeout --start-period --start-interval --retries] CMD … | NONE */
export function parseHealthcheck(node: InstructionNode): HealthcheckInstruction {
  const [type, ...rest] = node.args;
  if (type === undefined) throw new FrontendError("KILN_PARSE_ARGUMENTS", "Cannot parse HEALTHCHECK: it requires at least one argument");
  if (type.toUpperCase() === "NONE") {
    if (rest.length > 0) throw new FrontendError("KILN_PARSE_ARGUMENTS", "Cannot parse HEALTHCHECK NONE: it takes no arguments");
    parseFlags("HEALTHCHECK", node.flags, {});
    return { kind: "healthcheck", ...baseOf(node), test: ["NONE"] };
  }
  if (type.toUpperCase() !== "CMD") throw new FrontendError("KILN_PARSE_ARGUMENTS", `Cannot parse HEALTHCHECK: unknown type "${type}" (try CMD)`);
  if (rest.length === 0 || (rest.length === 1 && rest[0] === "")) throw new FrontendError("KILN_PARSE_ARGUMENTS", "Cannot parse HEALTHCHECK: a command must follow CMD");
  const flags = parseFlags("HEALTHCHECK", node.flags, {
    interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string",
  });
  const retriesText = flags.strings.get("retries");
  let retries: number | undefined;
  if (retriesText !== undefined && retriesText !== "") {
    if (!/^-?\d+$/u.test(retriesText)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot parse --retries="${retriesText}": expected an integer`);
    retries = Number(retriesText);
    if (retries < 0) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --retries=${retries}: it cannot be negative`);
  }
  const values = {
    interval: interval("interval", flags.strings.get("interval")),
    timeout: interval("timeout", flags.strings.get("timeout")),
    startPeriod: interval("start-period", flags.strings.get("start-period")),
    startInterval: interval("start-interval", flags.strings.get("start-interval")),
    retries,
  };
  const defined = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<typeof values>;
  const test = node.json ? ["CMD", ...rest] : ["CMD-SHELL", rest.join(" ")];
  return { kind: "healthcheck", ...baseOf(node), test, ...(defined as object) };
}
