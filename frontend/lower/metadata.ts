import type { HealthConfig, SourceRange } from "../../solver/llb/index.js";
import { FrontendError } from "../errors.js";
import type { Instruction } from "../instructions/types.js";
import type { LowerContext } from "./context.js";
import { commandArgs } from "./run.js";
import { envMap, setEnv, updateState, withHistory, type StageState } from "./stage-state.js";
import { VersionedTable } from "./versioned-log.js";
import { expandChecked } from "./undefined-var.js";

type MetadataInstruction = Exclude<Instruction, { kind: "run" | "copy" | "add" | "workdir" }>;

/** Go's %q of a []string: `["a" "b"]`. */
function goQuoted(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/** Go's %v of a []string: `[a b]`. */
function goList(list: readonly string[]): string {
  return `[${list.join(" ")}]`;
}

const SIGNALS = new Set([
  "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT",
  "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
]);

function validSignal(signal: string): boolean {
  if (/^\d+$/u.test(signal)) return Number(signal) > 0;
  const name = signal.toUpperCase().replace(/^SIG/u, "");
  if (SIGNALS.has(name)) return true;
  const rt = /^RTM(IN|AX)([+-]\d+)?$/u.exec(name);
  return rt !== null;
}

/** Go's time.Duration String() for whole and fractional seconds (`30s`, `1m30s`, `0s`). */
function goDuration(ns: number | undefined): string {
  if (ns === undefined || ns === 0) return "0s";
  if (ns < 1e9) return ns % 1e6 === 0 ? `${ns / 1e6}ms` : ns % 1e3 === 0 ? `${ns / 1e3}µs` : `${ns}ns`;
  let rest = ns / 1e9;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const s = `${Number(rest.toFixed(9))}s`;
  return h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
}

/**
 * The instructions that change only the image config (and, for ARG, the process environment):
 * each returns the new state with one `empty_layer` history line, as BuildKit's dispatch* do.
 */
export function lowerMetadata(ctx: LowerContext, state: StageState, instruction: MetadataInstruction): StageState {
  const expand = (word: string, s: StageState = state): string => expandChecked(ctx, s, word, instruction.range);
  switch (instruction.kind) {
    case "env": {
      let env = state.env;
      let configEnv = state.configEnv;
      const parts: string[] = [];
      for (const pair of instruction.pairs) {
        if (pair.legacy) warnLegacy(ctx, instruction.keyword, instruction.range);
        // BuildKit expands every pair against the environment from before the instruction.
        const key = expand(pair.key);
        const value = expand(pair.value);
        parts.push(`${key}=${value}`);
        env = env.set(key, value);
        configEnv = configEnv.set(key, `${key}=${value}`);
      }
      return withHistory(state, `ENV ${parts.join(" ")}`, true, { env, configEnv });
    }
    case "label": {
      let labels = state.labels ?? VersionedTable.of<string>();
      const parts: string[] = [];
      for (const pair of instruction.pairs) {
        if (pair.legacy) warnLegacy(ctx, instruction.keyword, instruction.range);
        const key = expand(pair.key);
        const value = expand(pair.value);
        labels = labels.set(key, value);
        parts.push(`${key}=${value}`);
      }
      return withHistory(state, `LABEL ${parts.join(" ")}`, true, { labels });
    }
    case "arg": {
      let next = state;
      const parts: string[] = [];
      for (const arg of instruction.args) {
        let value: string | undefined;
        if (Object.hasOwn(ctx.buildArgs, arg.key)) value = ctx.buildArgs[arg.key];
        else if (arg.value !== undefined) value = expand(arg.value, next);
        else value = ctx.globalScope.get(arg.key);
        if (value !== undefined) next = setEnv(next, arg.key, value);
        next = updateState(next, { buildArgs: next.buildArgs.append(value === undefined ? { key: arg.key } : { key: arg.key, value }) });
        parts.push(value === undefined ? arg.key : `${arg.key}=${value}`);
      }
      return withHistory(next, `ARG ${parts.join(" ")}`, true);
    }
    case "cmd": {
      const args = commandArgs(state, instruction.args, instruction.prependShell);
      if (instruction.prependShell) warnJsonArgs(ctx, "CMD", instruction.range);
      return withHistory(state, `CMD ${goQuoted(args)}`, true, { cmdSet: true, config: { ...state.config, Cmd: args, ArgsEscaped: true } });
    }
    case "entrypoint": {
      const args = commandArgs(state, instruction.args, instruction.prependShell);
      if (instruction.prependShell) warnJsonArgs(ctx, "ENTRYPOINT", instruction.range);
      const { Cmd, ...rest } = state.config;
      const config = state.cmdSet && Cmd !== undefined ? { ...rest, Cmd, Entrypoint: args } : { ...rest, Entrypoint: args };
      return withHistory(state, `ENTRYPOINT ${goQuoted(args)}`, true, { config });
    }
    case "user": {
      const user = expand(instruction.user);
      return withHistory(state, `USER ${user}`, true, { user, config: { ...state.config, User: user } });
    }
    case "expose": {
      let ports = state.exposedPorts ?? VersionedTable.of<Record<string, never>>();
      // BuildKit's dispatchExpose splits each expanded word (an empty one vanishes) and reports no UndefinedVar.
      const expanded: string[] = [];
      for (const p of instruction.ports) expanded.push(...ctx.shell.splitWords(p, envMap(state)));
      for (const spec of expanded) for (const port of exposedPorts(ctx, spec, instruction.range)) ports = ports.set(port, {});
      return withHistory(state, `EXPOSE ${expanded.join(" ")}`, true, { exposedPorts: ports });
    }
    case "volume": {
      let volumes = state.volumes ?? VersionedTable.of<Record<string, never>>();
      const list = instruction.volumes.map((v) => expand(v));
      for (const v of list) {
        if (v === "") throw new FrontendError("KILN_PARSE_ARGUMENTS", "Cannot use an empty VOLUME path");
        volumes = volumes.set(v, {});
      }
      return withHistory(state, `VOLUME ${goList(list)}`, true, { volumes });
    }
    case "stopsignal": {
      const signal = expand(instruction.signal);
      if (!validSignal(signal)) throw new FrontendError("KILN_STOPSIGNAL_INVALID", `Cannot use stop signal "${signal}": it is not a signal name or number`);
      return withHistory(state, `STOPSIGNAL ${signal}`, true, { config: { ...state.config, StopSignal: signal } });
    }
    case "shell":
      return withHistory(state, `SHELL ${goList(instruction.shell)}`, true, { config: { ...state.config, Shell: instruction.shell } });
    case "healthcheck": {
      const health: HealthConfig = {
        Test: instruction.test,
        ...(instruction.interval === undefined ? {} : { Interval: instruction.interval }),
        ...(instruction.timeout === undefined ? {} : { Timeout: instruction.timeout }),
        ...(instruction.startPeriod === undefined ? {} : { StartPeriod: instruction.startPeriod }),
        ...(instruction.startInterval === undefined ? {} : { StartInterval: instruction.startInterval }),
        ...(instruction.retries === undefined ? {} : { Retries: instruction.retries }),
      };
      const text = `{Test:${goList(instruction.test)} Interval:${goDuration(instruction.interval)} Timeout:${goDuration(instruction.timeout)} StartPeriod:${goDuration(instruction.startPeriod)} StartInterval:${goDuration(instruction.startInterval)} Retries:${instruction.retries ?? 0}}`;
      return withHistory(state, `HEALTHCHECK ${text}`, true, { config: { ...state.config, Healthcheck: health } });
    }
    case "onbuild":
      return updateState(state, { config: { ...state.config, OnBuild: [...(state.config.OnBuild ?? []), instruction.expression] } });
    case "maintainer":
      ctx.warn({ rule: "MaintainerDeprecated", message: "Maintainer instruction is deprecated in favor of using label", ranges: [instruction.range], url: "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/" });
      return withHistory(state, `MAINTAINER ${instruction.maintainer}`, true);
  }
}

function warnLegacy(ctx: LowerContext, keyword: string, range: SourceRange): void {
  ctx.warn({
    rule: "LegacyKeyValueFormat",
    message: `"${keyword.toUpperCase()} key=value" should be used instead of legacy "${keyword.toUpperCase()} key value" format`,
    ranges: [range],
    url: "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/",
  });
}

function warnJsonArgs(ctx: LowerContext, keyword: string, range: SourceRange): void {
  ctx.warn({
    rule: "JSONArgsRecommended",
    message: `JSON arguments recommended for ${keyword} to prevent unintended behavior related to OS signals`,
    ranges: [range],
    url: "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
  });
}

/** `80`, `80/tcp`, `8000-8002/udp` → `80/tcp`… (lower-cased protocol; ranges expanded). */
function exposedPorts(ctx: LowerContext, spec: string, range: SourceRange): string[] {
  const match = /^(?:(.*):)?(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/u.exec(spec);
  if (match === null) throw new FrontendError("KILN_EXPOSE_INVALID", `Cannot expose "${spec}": expected PORT[-PORT][/PROTOCOL]`);
  if (match[1] !== undefined) {
    ctx.warn({ rule: "ExposeInvalidFormat", message: `EXPOSE instruction should not define an IP address or host-port mapping, found '${spec}'`, ranges: [range], url: "https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/" });
  }
  const proto = match[4] ?? "tcp";
  if (proto !== proto.toLowerCase()) {
    ctx.warn({ rule: "ExposeProtoCasing", message: `Defined protocol '${spec}' in EXPOSE instruction should be lowercase`, ranges: [range], url: "https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/" });
  }
  const start = Number(match[2]);
  const end = match[3] === undefined ? start : Number(match[3]);
  if (end < start || end > 65535) throw new FrontendError("KILN_EXPOSE_INVALID", `Cannot expose "${spec}": invalid port range`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto.toLowerCase()}`);
  return out;
}
