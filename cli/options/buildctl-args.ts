import { join } from "node:path";
import { UsageError } from "./usage-error.js";

/** The one frontend kiln has: BuildKit's name for the Dockerfile frontend. */
const DOCKERFILE_FRONTEND = "dockerfile.v0";

/**
 * Rewrites buildctl's spelling of a build into docker build's, so both styles reach the same
 * parser and resolve to the same BuildRequest:
 *
 * | buildctl                              | docker build                  |
 * |---------------------------------------|-------------------------------|
 * | `--frontend dockerfile.v0`            | (implied)                     |
 * | `--local context=DIR`                 | `DIR` (the positional CONTEXT)|
 * | `--local dockerfile=DIR`              | `-f DIR/Dockerfile`           |
 * | `--opt filename=NAME`                 | `-f DIR/NAME`                 |
 * | `--opt target=T`                      | `--target T`                  |
 * | `--opt build-arg:K=V`                 | `--build-arg K=V`             |
 * | `--opt label:K=V`                     | `--label K=V`                 |
 * | `--opt context:NAME=V`                | `--build-context NAME=V`      |
 * | `--opt platform=P`                    | `--platform P`                |
 * | `--opt no-cache=` (empty: all)        | `--no-cache`                  |
 * | `--opt no-cache=A,B`                  | `--no-cache-filter A,B`       |
 * | `--opt force-network-mode=M`          | `--network M`                 |
 * | `--export-cache SPEC`                 | `--cache-to SPEC`             |
 * | `--import-cache SPEC`                 | `--cache-from SPEC`           |
 *
 * Flags both tools share (`--output`, `--secret`, `--ssh`, `--progress`, `--no-cache`,
 * `--metadata-file`) and every docker-style flag pass through unchanged. Without a `--local` or
 * `--opt` the argv is returned as is.
 */
export function translateBuildctlArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  const locals = new Map<string, string>();
  let filename: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const [flag, inline] = splitFlag(arg);
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`Option "${flag}" needs a value`);
      return next;
    };
    switch (flag) {
      case "--frontend": {
        const frontend = value();
        if (frontend !== DOCKERFILE_FRONTEND) {
          throw new UsageError(`Cannot use --frontend "${frontend}": kiln has only the "${DOCKERFILE_FRONTEND}" frontend`);
        }
        break;
      }
      case "--local": {
        const [name, dir] = keyValue(value(), "--local");
        locals.set(name, dir);
        break;
      }
      case "--opt": {
        const [key, optValue] = keyValue(value(), "--opt", true);
        if (key === "filename") filename = optValue;
        else out.push(...translateOpt(key, optValue));
        break;
      }
      case "--export-cache":
        out.push("--cache-to", value());
        break;
      case "--import-cache":
        out.push("--cache-from", value());
        break;
      default:
        out.push(arg);
    }
  }
  for (const name of locals.keys()) {
    if (name !== "context" && name !== "dockerfile") {
      throw new UsageError(`Cannot use --local "${name}": the Dockerfile frontend reads only "context" and "dockerfile"; name other directories with --opt context:${name}=local:${name}`);
    }
  }
  const context = locals.get("context");
  const dockerfileDir = locals.get("dockerfile") ?? context;
  if (dockerfileDir !== undefined && (locals.has("dockerfile") || filename !== undefined)) {
    out.unshift("--file", join(dockerfileDir, filename ?? "Dockerfile"));
  } else if (filename !== undefined) {
    throw new UsageError('Cannot use --opt filename without --local context=DIR or --local dockerfile=DIR');
  }
  if (context !== undefined) out.push(context);
  return out;
}

function translateOpt(key: string, value: string): string[] {
  if (key.startsWith("build-arg:")) return ["--build-arg", `${key.slice("build-arg:".length)}=${value}`];
  if (key.startsWith("label:")) return ["--label", `${key.slice("label:".length)}=${value}`];
  if (key.startsWith("context:")) return ["--build-context", `${key.slice("context:".length)}=${value}`];
  switch (key) {
    case "target":
      return ["--target", value];
    case "platform":
      return ["--platform", value];
    case "no-cache":
      return value === "" ? ["--no-cache"] : ["--no-cache-filter", value];
    case "force-network-mode":
      return ["--network", value];
    default:
      throw new UsageError(`Cannot use --opt "${key}": kiln's Dockerfile frontend does not know this option`);
  }
}

function splitFlag(arg: string): [string, string | undefined] {
  if (!arg.startsWith("--")) return [arg, undefined];
  const eq = arg.indexOf("=");
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

function keyValue(text: string, flag: string, allowEmpty = false): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0 || (!allowEmpty && eq === text.length - 1)) throw new UsageError(`Cannot parse ${flag} "${text}": expected KEY=VALUE`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}
