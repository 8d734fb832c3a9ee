import {
  file, marshal, normalizePlatform, parsePlatform, source, type HistoryEntry, type ImageConfig, type Output, type Platform, type SourceRange, type Tree,
} from "../../solver/llb/index.js";
import { globalArgs, predefinedArgs, proxyEnvOf, unconsumedBuildArgs } from "../build-args.js";
import { syntaxChecks } from "../checks.js";
import { parseCheckDirective } from "../directives.js";
import type { Dockerfile } from "../dockerfile.js";
import { dockerignoreMatcher, parseDockerignore } from "../dockerignore.js";
import { FrontendError, withRange } from "../errors.js";
import { parseInstruction } from "../instructions/parse-instruction.js";
import type { Instruction } from "../instructions/types.js";
import { nodeFromLine } from "../parser.js";
import { ShellWords } from "../shell-words.js";
import { findNamedContext, namedContexts, type NamedContexts } from "../named-contexts.js";
import { reachableStages, resolveFromReference, resolveTarget, stageDependencies, type ResolvedStage } from "../stages.js";
import { imageKey, type LowerContext, type ResolvedImage } from "./context.js";
import { lowerCopy } from "./copy.js";
import type { IgnoreRules } from "./copy-ignored.js";
import { baseImagePlatformMismatch, invalidDefaultArgsInFrom, undefinedArgsInFrom } from "./from-checks.js";
import { lowerMetadata } from "./metadata.js";
import type { BuildWarning, LoweredBuild, LowerOptions } from "./options.js";
import { lowerRun } from "./run.js";
import { envEntryKey, imageConfig, nextStepName, updateState, vertexOptions, type StageState } from "./stage-state.js";
import { VersionedList, VersionedTable } from "./versioned-log.js";
import { lowerWorkdir } from "./workdir.js";

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Lowers a parsed Dockerfile to a Definition whose head is the target stage's tree, plus that
 * stage's image metadata, as BuildKit's dockerfile2llb: only the stages the target needs are
 * lowered and only their images resolved. Deterministic: the same inputs give the same digests.
 * Throws FrontendError with the ranges of the instruction at fault.
 */
export async function lowerDockerfile(dockerfile: Dockerfile, options: LowerOptions): Promise<LoweredBuild> {
  const src = dockerfile.source;
  const shell = new ShellWords({ escapeToken: dockerfile.escapeToken });
  const buildArgs = options.buildArgs ?? {};
  const targetPlatform = normalizePlatform(options.platform);
  const warnings: BuildWarning[] = dockerfile.parseWarnings.map((w) => ({
    rule: w.rule, message: "Empty continuation line", ranges: [w.range], url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
  }));
  warnings.push(...syntaxChecks(dockerfile));
  const lastName = dockerfile.stages[dockerfile.stages.length - 1]?.from.name ?? "";
  const predefined = predefinedArgs(targetPlatform, normalizePlatform(options.buildPlatform), options.target ?? lastName, buildArgs);
  warnings.push(...invalidDefaultArgsInFrom(dockerfile, predefined, shell));
  const globalDeps = new Map<string, ReadonlySet<string>>();
  const scope = globalArgs(dockerfile.metaArgs, predefined, buildArgs, shell, src, globalDeps);
  const contexts = namedContexts(options.namedContexts);

  const stages: ResolvedStage[] = [];
  /** The global args each stage's FROM line used (a used one is a consumed build arg). */
  const fromArgs: Set<string>[] = [];
  for (const stage of dockerfile.stages) {
    const from = stage.from;
    let image: string;
    let platform: string | undefined;
    const used = new Set<string>();
    try {
      const expanded = shell.expandWord(from.image, scope);
      image = expanded.value;
      for (const name of expanded.matched) used.add(name);
      warnings.push(...undefinedArgsInFrom(expanded.unmatched, scope, dockerfile, from.range));
      if (from.platform !== undefined) {
        const expandedPlatform = shell.expandWord(from.platform, scope);
        platform = expandedPlatform.value;
        for (const name of expandedPlatform.matched) used.add(name);
        warnings.push(...undefinedArgsInFrom(expandedPlatform.unmatched, scope, dockerfile, from.range));
      }
    } catch (error) {
      throw withRange(error, from.range, src);
    }
    fromArgs.push(used);
    if (image === "") throw new FrontendError("KILN_FROM_EMPTY", `Cannot use FROM "${from.image}": it expands to an empty image name`, { ranges: [from.range], source: src });
    const earlier = stages.find((s) => s.name !== undefined && s.name === image.toLowerCase());
    // A named context with the stage's name replaces the stage; one with the image's name, the image.
    const override = from.name === undefined ? undefined : findNamedContext(contexts, from.name);
    const named = override ?? (image === "scratch" || earlier !== undefined ? undefined : findNamedContext(contexts, image));
    const base: ResolvedStage["base"] =
      named !== undefined ? (named.kind === "local" ? { kind: "context", name: named.name } : { kind: "image", ref: named.ref })
      : image === "scratch" ? { kind: "scratch" }
      : earlier !== undefined ? { kind: "stage", index: earlier.stage.index }
      : { kind: "image", ref: image };
    stages.push({
      stage, ...(from.name === undefined ? {} : { name: from.name }), base, ...(platform === undefined ? {} : { platform }), ...(override === undefined ? {} : { replaced: true }),
    });
  }
  const target = resolveTarget(stages, options.target);
  const reachable = reachableStages(stages, target, src, contexts);

  const platforms = new Map<number, Platform>();
  for (const index of reachable) {
    const stage = stages[index] as ResolvedStage;
    let platform = targetPlatform;
    if (stage.base.kind === "stage") platform = platforms.get(stage.base.index) ?? targetPlatform;
    if (stage.platform !== undefined) {
      try {
        platform = parsePlatform(stage.platform);
      } catch (error) {
        throw new FrontendError("KILN_PLATFORM_INVALID", `Cannot use --platform="${stage.platform}": ${(error as Error).message}`, { ranges: [stage.stage.from.range], source: src });
      }
    }
    platforms.set(index, platform);
  }

  const images = await resolveImages(stages, reachable, platforms, options, src, contexts, (w) => warnings.push(w));

  const patterns = options.dockerignore === undefined ? [] : parseDockerignore(options.dockerignore);
  const ignoreRules: IgnoreRules | undefined = patterns.length === 0 ? undefined : { matcher: dockerignoreMatcher(patterns), patterns: patterns.map((p) => p.pattern) };
  const proxyEnv = proxyEnvOf(buildArgs);
  const contextName = options.contextName ?? "context";
  let context: Output | undefined;
  const contextTree = (): Output => {
    context ??= source(
      `local://${contextName}`,
      patterns.length > 0 ? { excludepatterns: JSON.stringify(patterns.map((p) => p.pattern)), sharedkeyhint: contextName } : { sharedkeyhint: contextName },
      undefined,
      { metadata: { name: "[internal] load build context" } },
    );
    return context;
  };
  const localContexts = new Map<string, Output>();
  const localContext = (name: string): Output => {
    let tree = localContexts.get(name);
    if (tree === undefined) {
      tree = source(`local://${name}`, { sharedkeyhint: name }, undefined, { metadata: { name: `[context ${name}] load from client` } });
      localContexts.set(name, tree);
    }
    return tree;
  };
  const finals = new Map<number, StageState>();
  const imageSource = (ref: string, platform: Platform): Output => {
    const resolved = images.get(imageKey(ref, platform));
    if (resolved === undefined) throw new FrontendError("KILN_FRONTEND_INTERNAL", `Cannot use image "${ref}": it was not resolved`);
    return source(`docker-image://${resolved.ref}`, {}, platform, { metadata: { name: `[internal] load ${resolved.ref}` } });
  };
  const asOutput = (tree: Tree, platform: Platform): Output => tree ?? file(null, [], platform);
  const single = dockerfile.stages.length === 1;

  for (const index of reachable) {
    const resolved = stages[index] as ResolvedStage;
    const stage = resolved.stage;
    const platform = platforms.get(index) ?? targetPlatform;
    const ctx: LowerContext = {
      stage: resolved.name ?? String(index),
      source: src,
      info: src.toSourceInfo(),
      shell,
      escapeToken: dockerfile.escapeToken,
      globalScope: scope,
      buildArgs,
      targetPlatform,
      contextTree,
      stageTree: (i) => finals.get(i)?.tree,
      image: (ref, p) => images.get(imageKey(ref, p)),
      mountSource: (from, p) => {
        const ref = resolveFromReference(stages, index, from, stage.from.range, src, contexts);
        if (ref.kind === "image") return imageSource(ref.ref, p);
        if (ref.kind === "context") return localContext(ref.name);
        const done = finals.get(ref.index);
        if (done === undefined) throw new FrontendError("KILN_FRONTEND_INTERNAL", `Cannot use stage "${from}": it was not lowered`);
        return asOutput(done.tree, done.platform);
      },
      warn: (w) => warnings.push(w),
      ...(ignoreRules === undefined ? {} : { dockerignore: ignoreRules }),
      ...(proxyEnv === undefined ? {} : { proxyEnv }),
    };
    let triggers: Instruction[] = [];
    let state: StageState;
    const displayName = single ? "" : (resolved.name ?? `stage-${index}`);
    const counted = resolved.replaced === true ? 0 : stage.instructions.filter((i) => i.kind === "run" || i.kind === "copy" || i.kind === "add" || i.kind === "workdir").length;
    switch (resolved.base.kind) {
      case "scratch":
        state = initialState(displayName, null, platform, { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: "/" }, [], counted);
        break;
      case "context":
        // A named local context: its files are the stage's tree, with scratch's config (BuildKit gives it no image config).
        state = initialState(displayName, localContext(resolved.base.name), platform, { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: "/" }, [], counted);
        break;
      case "stage": {
        const base = finals.get(resolved.base.index) as StageState;
        const { OnBuild: _, ...config } = base.config;
        state = updateState(base, { displayName, config, cmdSet: false, step: 0, totalSteps: counted });
        break;
      }
      case "image": {
        const image = images.get(imageKey(resolved.base.ref, platform)) as ResolvedImage;
        const { OnBuild, ...config } = image.spec.config ?? {};
        try {
          triggers = (OnBuild ?? []).map((expression) => {
            const parsed = parseInstruction(nodeFromLine(expression, dockerfile.escapeToken, [], stage.from.range));
            if (parsed.kind === "from") throw new FrontendError("KILN_ONBUILD_INVALID", `Cannot run the ONBUILD trigger "${expression}" of "${image.ref}": FROM is not allowed there`);
            return parsed;
          });
        } catch (error) {
          throw withRange(error, stage.from.range, src);
        }
        const total = 1 + counted + triggers.filter((i) => i.kind === "run" || i.kind === "copy" || i.kind === "add" || i.kind === "workdir").length;
        state = initialState(displayName, null, platform, config, image.spec.history ?? [], total);
        const step = nextStepName(state, `FROM ${image.ref}`);
        const tree = source(`docker-image://${image.ref}`, {}, platform, vertexOptions(step.name, stage.from.original, { source: ctx.info, range: stage.from.range, stage: ctx.stage }));
        state = updateState(step.state, { tree });
        break;
      }
    }
    for (const instruction of resolved.replaced === true ? [] : [...triggers, ...stage.instructions]) {
      try {
        state = lowerInstruction(ctx, state, instruction);
      } catch (error) {
        throw withRange(error, instruction.range, src);
      }
    }
    finals.set(index, state);
  }

  const result = finals.get(target) as StageState;
  const definition = marshal(result.tree);
  const checked = applyChecks(dockerfile, warnings, options.checks ?? "apply");
  const unused = unconsumedBuildArgs(buildArgs, consumedArgs(reachable, fromArgs, globalDeps, finals));
  // Not a build check: no rule, so `# check=` neither skips it nor turns it into an error.
  if (unused.length > 0) checked.warnings.push({ message: `One or more build-args [${unused.join(" ")}] were not consumed`, ranges: [] });
  const epoch = sourceDateEpoch(buildArgs, scope);
  return {
    definition,
    image: { platform: targetPlatform, config: imageConfig(result), history: [...result.history.toArray()] },
    warnings: checked.warnings,
    checkFailed: checked.failed,
    ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
  };
}

function lowerInstruction(ctx: LowerContext, state: StageState, instruction: Instruction): StageState {
  switch (instruction.kind) {
    case "run":
      return lowerRun(ctx, state, instruction);
    case "copy":
    case "add":
      return lowerCopy(ctx, state, instruction);
    case "workdir":
      return lowerWorkdir(ctx, state, instruction);
    default:
      return lowerMetadata(ctx, state, instruction);
  }
}

function initialState(displayName: string, tree: Tree, platform: Platform, base: ImageConfig, history: readonly HistoryEntry[], totalSteps: number): StageState {
  const { Env, Labels, ExposedPorts, Volumes, ...config } = base;
  let configEnv = VersionedTable.of((Env ?? []).map((entry): [string, string] => [envEntryKey(entry), entry]));
  if (!configEnv.has("PATH")) configEnv = configEnv.set("PATH", `PATH=${DEFAULT_PATH}`);
  let env = VersionedTable.of<string>();
  for (const entry of configEnv.entries().values()) {
    const eq = entry.indexOf("=");
    env = eq === -1 ? env.set(entry, "") : env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const workdir = config.WorkingDir !== undefined && config.WorkingDir !== "" ? config.WorkingDir : "/";
  return {
    displayName, tree, platform, env, config, configEnv,
    labels: Labels === undefined ? undefined : VersionedTable.of(Object.entries(Labels)),
    exposedPorts: ExposedPorts === undefined ? undefined : VersionedTable.of(Object.keys(ExposedPorts).map((k): [string, Record<string, never>] => [k, {}])),
    volumes: Volumes === undefined ? undefined : VersionedTable.of(Object.keys(Volumes).map((k): [string, Record<string, never>] => [k, {}])),
    history: VersionedList.of(history), buildArgs: VersionedList.of(), workdir, user: config.User ?? "", cmdSet: false, step: 0, totalSteps,
  };
}

async function resolveImages(
  stages: readonly ResolvedStage[],
  reachable: readonly number[],
  platforms: ReadonlyMap<number, Platform>,
  options: LowerOptions,
  src: Dockerfile["source"],
  contexts: NamedContexts,
  warn: (warning: BuildWarning) => void,
): Promise<Map<string, ResolvedImage>> {
  // Each image once per platform, with every FROM that uses it: each gets its own platform warning.
  const wanted = new Map<string, { ref: string; platform: Platform; ranges: SourceRange[] }>();
  const want = (ref: string, platform: Platform, range: SourceRange): void => {
    const key = imageKey(ref, platform);
    const entry = wanted.get(key) ?? { ref, platform, ranges: [] };
    if (!entry.ranges.includes(range)) entry.ranges.push(range);
    wanted.set(key, entry);
  };
  for (const index of reachable) {
    const stage = stages[index] as ResolvedStage;
    const platform = platforms.get(index) as Platform;
    if (stage.base.kind === "image") want(stage.base.ref, platform, stage.stage.from.range);
    for (const dep of stageDependencies(stages, index, src, contexts)) {
      if (dep.kind === "image") want(dep.ref, platform, stage.stage.from.range);
    }
  }
  const entries = await Promise.all(
    [...wanted].map(async ([key, { ref, platform, ranges }]): Promise<[string, ResolvedImage, BuildWarning[]]> => {
      try {
        const resolved = await options.resolveImage(ref, options.signal === undefined ? { platform } : { platform, signal: options.signal });
        const found = ranges.map((range) => baseImagePlatformMismatch(ref, platform, resolved.config, range)).filter((w) => w !== undefined);
        return [key, { ref: resolved.ref, spec: resolved.config }, found];
      } catch (error) {
        throw new FrontendError("KILN_IMAGE_RESOLVE", `Cannot resolve image "${ref}": ${error instanceof Error ? error.message : String(error)}`, { ranges: [ranges[0] as SourceRange], source: src, cause: error });
      }
    }),
  );
  // Warnings in Dockerfile order, whatever order the resolutions finished in.
  for (const w of entries.flatMap(([, , found]) => found).sort((a, b) => (a.ranges[0]?.start.line ?? 0) - (b.ranges[0]?.start.line ?? 0))) warn(w);
  return new Map(entries.map(([key, image]) => [key, image]));
}

/**
 * The build args the lowered stages consumed: ARGs they declare (also through a base stage) and
 * the global args their FROM lines use, with what those global args' defaults used in turn.
 */
function consumedArgs(
  reachable: readonly number[],
  fromArgs: readonly ReadonlySet<string>[],
  globalDeps: ReadonlyMap<string, ReadonlySet<string>>,
  finals: ReadonlyMap<number, StageState>,
): Set<string> {
  const consumed = new Set<string>();
  const pending: string[] = [];
  for (const index of reachable) {
    pending.push(...(fromArgs[index] ?? []));
    for (const arg of finals.get(index)?.buildArgs.toArray() ?? []) pending.push(arg.key);
  }
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (consumed.has(name)) continue;
    consumed.add(name);
    pending.push(...(globalDeps.get(name) ?? []));
  }
  return consumed;
}

/**
 * SOURCE_DATE_EPOCH for the exporter, as BuildKit's dockerfile2llb reads it: the build arg, else
 * a non-empty global ARG default; a whole number of seconds. Undefined when unset or not a number
 * (BuildKit's other forms, a stage or context to take the time from, are not supported).
 */
function sourceDateEpoch(buildArgs: Readonly<Record<string, string>>, scope: ReadonlyMap<string, string>): number | undefined {
  const value = Object.hasOwn(buildArgs, "SOURCE_DATE_EPOCH") ? buildArgs.SOURCE_DATE_EPOCH : scope.get("SOURCE_DATE_EPOCH");
  if (value === undefined || !/^\d+$/u.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** BuildKit's experimental rules: off unless `# check=experimental=` names them. */
const EXPERIMENTAL_RULES: ReadonlySet<string> = new Set(["CopyIgnoredFile"]);

/**
 * Applies `# check=skip=…;error=true;experimental=…`: drops skipped rules, and with error=true turns findings
 * into an error (thrown in "apply" mode; reported as `failed` in "report" mode, for `--check`).
 */
function applyChecks(dockerfile: Dockerfile, findings: readonly BuildWarning[], mode: "apply" | "report"): { warnings: BuildWarning[]; failed: boolean } {
  const directive = dockerfile.directives.find((d) => d.name === "check");
  const check = parseCheckDirective(directive?.value ?? "");
  // The same finding twice (one variable used in two words of a line) is reported once.
  const seen = new Set<string>();
  const warnings = findings.filter((w) => {
    const key = `${w.rule ?? ""}\u0000${w.message}\u0000${JSON.stringify(w.ranges)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // Experimental rules run only when enabled, and then skip= does not apply to them (BuildKit's Linter.Run).
  const enabled = (rule: string): boolean => check.experimental.includes("all") || check.experimental.includes(rule);
  const kept = warnings.filter((w) => {
    if (w.rule === undefined) return true;
    if (EXPERIMENTAL_RULES.has(w.rule)) return enabled(w.rule);
    return !check.skip.includes("all") && !check.skip.includes(w.rule);
  });
  if (check.error && kept.length > 0 && mode === "report") return { warnings: kept, failed: true };
  if (check.error && kept.length > 0) {
    const first = kept[0] as BuildWarning;
    throw new FrontendError("KILN_CHECK_FAILED", `Cannot build: the build check "${first.rule ?? ""}" failed (${first.message})`, {
      ranges: kept.flatMap((w) => w.ranges),
      source: dockerfile.source,
      hint: `Fix the Dockerfile or skip the rule with "# check=skip=${first.rule ?? ""}"`,
    });
  }
  return { warnings: kept, failed: false };
}
