import { formatPlatform, type Platform, type ProxyEnv } from "../solver/llb/index.js";
import { withRange } from "./errors.js";
import type { ArgInstruction } from "./instructions/types.js";
import { ShellWords } from "./shell-words.js";
import type { SourceFile } from "./source-file.js";

/**
 * The automatic platform args (BuildKit's defaultArgs): BUILDPLATFORM, BUILDOS, BUILDARCH,
 * BUILDVARIANT, TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, TARGETSTAGE. They are in
 * scope for FROM lines and reach a stage only when re-declared with ARG. `--build-arg` overrides them.
 */
export function predefinedArgs(target: Platform, build: Platform, targetStage: string, overrides: Readonly<Record<string, string>>): Map<string, string> {
  const values: [string, string][] = [
    ["BUILDPLATFORM", formatPlatform(build)],
    ["BUILDOS", build.os],
    ["BUILDOSVERSION", ""],
    ["BUILDARCH", build.architecture],
    ["BUILDVARIANT", build.variant ?? ""],
    ["TARGETPLATFORM", formatPlatform(target)],
    ["TARGETOS", target.os],
    ["TARGETOSVERSION", ""],
    ["TARGETARCH", target.architecture],
    ["TARGETVARIANT", target.variant ?? ""],
    ["TARGETSTAGE", targetStage === "" ? "default" : targetStage],
  ];
  return new Map(values.map(([k, v]) => [k, overrides[k] ?? v]));
}

/** The proxy build args (any case) and the ProxyEnv field each sets, as BuildKit's proxyEnvFromBuildArgs. */
const PROXY_FIELDS: ReadonlyMap<string, keyof ProxyEnv> = new Map([
  ["http_proxy", "httpProxy"],
  ["https_proxy", "httpsProxy"],
  ["ftp_proxy", "ftpProxy"],
  ["no_proxy", "noProxy"],
  ["all_proxy", "allProxy"],
]);

/** Whether `name` is a proxy build arg (HTTP_PROXY, https_proxy, …: compared without case, as BuildKit does). */
export function isProxyArg(name: string): boolean {
  return PROXY_FIELDS.has(name.toLowerCase());
}

/**
 * The proxy settings the build args carry (BuildKit's ProxyEnv): they reach every RUN's
 * environment without an ARG, while staying out of history and cache keys. Keys are read in
 * sorted order, so `http_proxy` wins over `HTTP_PROXY` when both are given, as in BuildKit.
 * Undefined when no non-empty proxy arg is given.
 */
export function proxyEnvOf(buildArgs: Readonly<Record<string, string>>): ProxyEnv | undefined {
  const out: Partial<Record<keyof ProxyEnv, string>> = {};
  let any = false;
  for (const key of Object.keys(buildArgs).sort()) {
    const field = PROXY_FIELDS.get(key.toLowerCase());
    const value = buildArgs[key];
    if (field === undefined || value === undefined || value === "") continue;
    out[field] = value;
    any = true;
  }
  return any ? out : undefined;
}

/**
 * Whether `--build-arg name` is one the build consumes without any ARG, so that it never counts as
 * unused: the platform args, the proxy args, SOURCE_DATE_EPOCH and BuildKit's frontend options
 * (`BUILDKIT_*`, such as BUILDKIT_INLINE_CACHE).
 */
export function isPredefinedArg(name: string): boolean {
  return PREDEFINED_NAMES.has(name) || isProxyArg(name) || name === "SOURCE_DATE_EPOCH" || name.startsWith("BUILDKIT_");
}

const PREDEFINED_NAMES: ReadonlySet<string> = new Set([
  "BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
  "TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE",
]);

/**
 * The `--build-arg` names nothing consumed, sorted: neither declared by an ARG in a lowered stage
 * nor used (directly or through a global ARG's default) by a lowered stage's FROM line, and not
 * predefined. Docker's builder reports them as "One or more build-args [...] were not consumed".
 */
export function unconsumedBuildArgs(buildArgs: Readonly<Record<string, string>>, consumed: ReadonlySet<string>): string[] {
  return Object.keys(buildArgs).filter((name) => !consumed.has(name) && !isPredefinedArg(name)).sort();
}

/**
 * The global scope for FROM lines and for ARGs re-declared in stages: the predefined args, then
 * each ARG before the first FROM in order: a `--build-arg` value wins, else the default expanded
 * against what came before; a declaration without either stays undefined (and out of the map).
 * With `deps`, records for each ARG the names its default expansion used (for "consumed" args).
 */
export function globalArgs(
  metaArgs: readonly ArgInstruction[],
  predefined: ReadonlyMap<string, string>,
  buildArgs: Readonly<Record<string, string>>,
  shell: ShellWords,
  source: SourceFile,
  deps?: Map<string, ReadonlySet<string>>,
): Map<string, string> {
  const scope = new Map(predefined);
  for (const instruction of metaArgs) {
    for (const arg of instruction.args) {
      let value: string | undefined = Object.hasOwn(buildArgs, arg.key) ? buildArgs[arg.key] : undefined;
      if (value === undefined && arg.value !== undefined) {
        try {
          const expanded = shell.expandWord(arg.value, scope);
          value = expanded.value;
          if (deps !== undefined) {
            // A re-declaration that uses itself (`ARG A=$A-x`) keeps what the earlier one used.
            const used = new Set(expanded.matched);
            if (used.delete(arg.key)) for (const name of deps.get(arg.key) ?? []) used.add(name);
            deps.set(arg.key, used);
          }
        } catch (error) {
          throw withRange(error, instruction.range, source);
        }
      }
      if (value !== undefined) scope.set(arg.key, value);
    }
  }
  return scope;
}
