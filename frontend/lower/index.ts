import {
  file, formatPlatform, marshal, normalizePlatform, parsePlatform, samePlatform, source, type ImageConfig, type ImageSpec as ResolvedImageSpec, type Output,
  type Platform, type Tree,
} from "../../solver/llb/index.js";
import { globalArgs, predefinedArgs } from "../build-args.js";
import { ruleUrl, syntaxChecks } from "../checks.js";
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
import { lowerMetadata } from "./metadata.js";
import type { BuildWarning, LoweredBuild, LowerOptions } from "./options.js";
import { lowerRun } from "./run.js";
import { nextStepName, setEnvList, vertexOptions, type StageState } from "./stage-state.js";
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
  const scope = globalArgs(dockerfile.metaArgs, predefined, buildArgs, shell, src);
  const contexts = namedContexts(options.namedContexts);

  const stages: ResolvedStage[] = [];
  for (const stage of dockerfile.stages) {
    const from = stage.from;
    let image: string;
    let platform: string | undefined;
    try {
      image = shell.expandWord(from.image, scope).value;
      platform = from.platform === undefined ? undefined : shell.expandWord(from.platform, scope).value;
    } catch (error) {
      throw withRange(error, from.range, src);
    }
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
  if (patterns.length > 0) dockerignoreMatcher(patterns);
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
        state = { ...base, displayName, config, cmdSet: false, step: 0, totalSteps: counted };
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
        state = { ...step.state, tree };
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
  return { definition, image: { platform: targetPlatform, config: result.config, history: result.history }, warnings: checked.warnings, checkFailed: checked.failed };
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

function initialState(displayName: string, tree: Tree, platform: Platform, base: ImageConfig, history: StageState["history"], totalSteps: number): StageState {
  let config = base;
  if (!(config.Env ?? []).some((e) => e.startsWith("PATH="))) config = { ...config, Env: setEnvList(config.Env, "PATH", DEFAULT_PATH) };
  const env = (config.Env ?? []).map((e): readonly [string, string] => {
    const eq = e.indexOf("=");
    return eq === -1 ? [e, ""] : [e.slice(0, eq), e.slice(eq + 1)];
  });
  const workdir = config.WorkingDir !== undefined && config.WorkingDir !== "" ? config.WorkingDir : "/";
  return { displayName, tree, platform, env, config, history, buildArgs: [], workdir, user: config.User ?? "", cmdSet: false, step: 0, totalSteps };
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
  const wanted = new Map<string, { ref: string; platform: Platform; range: ResolvedStage["stage"]["from"]["range"] }>();
  for (const index of reachable) {
    const stage = stages[index] as ResolvedStage;
    const platform = platforms.get(index) as Platform;
    if (stage.base.kind === "image") wanted.set(imageKey(stage.base.ref, platform), { ref: stage.base.ref, platform, range: stage.stage.from.range });
    for (const dep of stageDependencies(stages, index, src, contexts)) {
      if (dep.kind === "image" && !wanted.has(imageKey(dep.ref, platform))) wanted.set(imageKey(dep.ref, platform), { ref: dep.ref, platform, range: stage.stage.from.range });
    }
  }
  const entries = await Promise.all(
    [...wanted].map(async ([key, { ref, platform, range }]): Promise<[string, ResolvedImage]> => {
      try {
        const resolved = await options.resolveImage(ref, options.signal === undefined ? { platform } : { platform, signal: options.signal });
        warnOnPlatformMismatch(ref, platform, resolved.config, range, warn);
        return [key, { ref: resolved.ref, spec: resolved.config }];
      } catch (error) {
        throw new FrontendError("KILN_IMAGE_RESOLVE", `Cannot resolve image "${ref}": ${error instanceof Error ? error.message : String(error)}`, { ranges: [range], source: src, cause: error });
      }
    }),
  );
  return new Map(entries);
}

/**
 * BuildKit's InvalidBaseImagePlatform: a base image whose config names another platform than the
 * one asked for (a single-platform image has no index to choose from) is used, with a warning,
 * since its RUN steps would need emulation or produce an image of the wrong architecture.
 */
function warnOnPlatformMismatch(
  ref: string,
  expected: Platform,
  config: ResolvedImageSpec,
  range: ResolvedStage["stage"]["from"]["range"],
  warn: (warning: BuildWarning) => void,
): void {
  if (config.os === "" || config.architecture === "") return;
  const actual = normalizePlatform(config.variant === undefined ? { os: config.os, architecture: config.architecture } : { os: config.os, architecture: config.architecture, variant: config.variant });
  if (samePlatform(actual, expected)) return;
  warn({
    rule: "InvalidBaseImagePlatform",
    message: `Base image ${ref} was pulled with platform "${formatPlatform(actual)}", expected "${formatPlatform(expected)}" for current build`,
    ranges: [range],
    url: ruleUrl("InvalidBaseImagePlatform"),
  });
}

/**
 * Applies `# check=skip=…;error=true`: drops skipped rules, and with error=true turns findings
 * into an error (thrown in "apply" mode; reported as `failed` in "report" mode, for `--check`).
 */
function applyChecks(dockerfile: Dockerfile, warnings: readonly BuildWarning[], mode: "apply" | "report"): { warnings: BuildWarning[]; failed: boolean } {
  const directive = dockerfile.directives.find((d) => d.name === "check");
  if (directive === undefined) return { warnings: [...warnings], failed: false };
  const check = parseCheckDirective(directive.value);
  const kept = check.skip.includes("all") ? [] : warnings.filter((w) => !check.skip.includes(w.rule));
  if (check.error && kept.length > 0 && mode === "report") return { warnings: kept, failed: true };
  if (check.error && kept.length > 0) {
    const first = kept[0] as BuildWarning;
    throw new FrontendError("KILN_CHECK_FAILED", `Cannot build: the build check "${first.rule}" failed (${first.message})`, {
      ranges: kept.flatMap((w) => w.ranges),
      source: dockerfile.source,
      hint: `Fix the Dockerfile or skip the rule with "# check=skip=${first.rule}"`,
    });
  }
  return { warnings: kept, failed: false };
}
