import type { CacheSharing, MountSpec } from "../../solver/llb/index.js";
import { FrontendError } from "../errors.js";
import type { RunInstruction } from "../instructions/types.js";
import { ShellWords } from "../shell-words.js";
import type { LowerContext } from "./context.js";
import { resolveDest, resolveSource } from "./paths.js";
import type { StageState } from "./stage-state.js";
import { expandChecked } from "./undefined-var.js";

/** One `RUN --mount=…` flag, parsed (values expanded later). */
export interface RunMountFlag {
  readonly type: "bind" | "cache" | "tmpfs" | "secret" | "ssh";
  readonly options: ReadonlyMap<string, string>;
  /** `from=`: a stage or image the mount reads (bind, cache). */
  readonly from?: string;
}

const TYPES = new Set(["bind", "cache", "tmpfs", "secret", "ssh"]);
const KEYS: Readonly<Record<RunMountFlag["type"], readonly string[]>> = {
  bind: ["target", "source", "from", "readonly", "readwrite"],
  cache: ["target", "source", "from", "readonly", "readwrite", "id", "sharing", "mode", "uid", "gid"],
  tmpfs: ["target", "size"],
  secret: ["target", "id", "env", "required", "mode", "uid", "gid"],
  ssh: ["target", "id", "required", "mode", "uid", "gid"],
};
const ALIASES: Readonly<Record<string, string>> = { dst: "target", destination: "target", src: "source", ro: "readonly", rw: "readwrite" };

/** Parses the CSV value of `--mount` (BuildKit's parseMount); unknown keys and types are errors. */
export function parseRunMount(text: string): RunMountFlag {
  const options = new Map<string, string>();
  let type = "bind";
  for (const field of text.split(",")) {
    if (field.trim() === "") continue;
    const eq = field.indexOf("=");
    const rawKey = (eq === -1 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? "true" : field.slice(eq + 1);
    const key = ALIASES[rawKey] ?? rawKey;
    if (key === "type") {
      if (!TYPES.has(value)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount type "${value}": expected bind, cache, tmpfs, secret or ssh`);
      type = value;
      continue;
    }
    options.set(key, value);
  }
  const typed = type as RunMountFlag["type"];
  for (const key of options.keys()) {
    if (!KEYS[typed].includes(key)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount option "${key}" with type=${typed}: unknown option`);
  }
  const from = options.get("from");
  return from === undefined ? { type: typed, options } : { type: typed, options, from };
}

function octal(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-7]+$/u.test(value)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount ${name}="${value}": expected an octal mode`);
  return Number.parseInt(value, 8);
}

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/u.test(value)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount ${name}="${value}": expected a number`);
  return Number(value);
}

function flag(value: string | undefined): boolean {
  return value !== undefined && value.toLowerCase() !== "false";
}

/** RUN --mount flags → exec mounts (beside the root mount); `from=` resolves to stages or pre-resolved images. */
export function lowerRunMounts(ctx: LowerContext, state: StageState, run: RunInstruction): MountSpec[] {
  const lexer = new ShellWords({ escapeToken: ctx.escapeToken, skipProcessQuotes: true });
  return run.mounts.map((text, index): MountSpec => {
    const parsed = parseRunMount(expandChecked(ctx, state, text, run.range, lexer));
    const o = parsed.options;
    const target = o.get("target");
    switch (parsed.type) {
      case "bind":
      case "cache": {
        if (target === undefined || target === "") throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount type=${parsed.type} without a target`);
        const input = parsed.from === undefined ? (parsed.type === "bind" ? ctx.contextTree() : null) : ctx.mountSource(parsed.from, state.platform);
        const selector = resolveSource(o.get("source") ?? "/");
        const dest = resolveDest(state.workdir, target);
        if (parsed.type === "bind") {
          const writable = flag(o.get("readwrite"));
          return { type: "bind", target: dest, input, selector, readonly: !writable, output: false };
        }
        const sharing = o.get("sharing") ?? "shared";
        if (sharing !== "shared" && sharing !== "private" && sharing !== "locked") {
          throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount sharing="${sharing}": expected shared, private or locked`);
        }
        return {
          type: "cache",
          target: dest,
          id: o.get("id") ?? dest,
          sharing: sharing as CacheSharing,
          input,
          selector,
          readonly: flag(o.get("readonly")),
          mode: octal("mode", o.get("mode"), 0o755),
          uid: integer("uid", o.get("uid"), 0),
          gid: integer("gid", o.get("gid"), 0),
        };
      }
      case "tmpfs": {
        if (target === undefined || target === "") throw new FrontendError("KILN_PARSE_FLAG", "Cannot use --mount type=tmpfs without a target");
        const size = o.get("size");
        return size === undefined ? { type: "tmpfs", target: resolveDest(state.workdir, target) } : { type: "tmpfs", target: resolveDest(state.workdir, target), size: parseSize(size) };
      }
      case "secret": {
        const id = o.get("id") ?? (target === undefined ? "" : (target.split("/").pop() ?? ""));
        if (id === "") throw new FrontendError("KILN_PARSE_FLAG", "Cannot use --mount type=secret without an id or a target");
        const envName = o.get("env");
        const secretTarget = target ?? (envName === undefined ? `/run/secrets/${id}` : undefined);
        return {
          type: "secret",
          id,
          ...(secretTarget === undefined ? {} : { target: resolveDest(state.workdir, secretTarget) }),
          ...(envName === undefined ? {} : { env: envName }),
          required: flag(o.get("required")),
          mode: octal("mode", o.get("mode"), 0o400),
          uid: integer("uid", o.get("uid"), 0),
          gid: integer("gid", o.get("gid"), 0),
        };
      }
      case "ssh":
        return {
          type: "ssh",
          id: o.get("id") ?? "default",
          target: target ?? `/run/buildkit/ssh_agent.${index}`,
          required: flag(o.get("required")),
          mode: octal("mode", o.get("mode"), 0o600),
          uid: integer("uid", o.get("uid"), 0),
          gid: integer("gid", o.get("gid"), 0),
        };
    }
  });
}

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/iu.exec(text.trim());
  if (match === null) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --mount size="${text}": expected a size such as 64m`);
  const scale: Readonly<Record<string, number>> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.round(Number(match[1]) * (scale[(match[2] ?? "").toLowerCase()] ?? 1));
}
