import { file, marshal, normalizePlatform, parsePlatform, source, type ImageConfig, type Output, type Platform, type Tree } from "../../solver/llb/index.js";
import { globalArgs, predefinedArgs } from "../build-args.js";
import { parseCheckDirective } from "../directives.js";
import type { Dockerfile } from "../dockerfile.js";
import { dockerignoreMatcher, parseDockerignore } from "../dockerignore.js";
import { FrontendError, withRange } from "../errors.js";
import { parseInstruction } from "../instructions/parse-instruction.js";
import type { Instruction } from "../instructions/types.js";
import { nodeFromLine } from "../parser.js";
import { ShellWords } from "../shell-words.js";
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
  const lastName = dockerfile.stages[dockerfile.stages.length - 1]?.from.name ?? "";
  const predefined = predefinedArgs(targetPlatform, normalizePlatform(options.buildPlatform), options.target ?? lastName, buildArgs);
  const scope = globalArgs(dockerfile.metaArgs, predefined, buildArgs, shell, src);

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
    const base: ResolvedStage["base"] = image === "scratch" ? { kind: "scratch" } : earlier !== undefined ? { kind: "stage", index: earlier.stage.index } : { kind: "image", ref: image };
    stages.push({ stage, ...(from.name === undefined ? {} : { name: from.name }), base, ...(platform === undefined ? {} : { platform }) });
  }
  const target = resolveTarget(stages, options.target);
  const reachable = reachableStages(stages, target, src);

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

  const images = await resolveImages(stages, reachable, platforms, options, src);

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
        const ref = resolveFromReference(stages, index, from, stage.from.range, src);
        if (ref.kind === "image") return imageSource(ref.ref, p);
        const done = finals.get(ref.index);
        if (done === undefined) throw new FrontendError("KILN_FRONTEND_INTERNAL", `Cannot use stage "${from}": it was not lowered`);
        return asOutput(done.tree, done.platform);
      },
      warn: (w) => warnings.push(w),
    };
    let triggers: Instruction[] = [];
    let state: StageState;
    const displayName = single ? "" : (resolved.name ?? `stage-${index}`);
    const counted = stage.instructions.filter((i) => i.kind === "run" || i.kind === "copy" || i.kind === "add" || i.kind === "workdir").length;
    switch (resolved.base.kind) {
      case "scratch":
        state = initialState(displayName, null, platform, { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: "/" }, [], counted);
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
        const tree = source(`docker-image://${image.ref}`, {}, platform, vertexOptions(step.name, stage.from.original, { source: ctx.info, range: stage.from.range }));
        state = { ...step.state, tree };
        break;
      }
    }
    for (const instruction of [...triggers, ...stage.instructions]) {
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
  return { definition, image: { platform: targetPlatform, config: result.config, history: result.history }, warnings: applyChecks(dockerfile, warnings) };
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
): Promise<Map<string, ResolvedImage>> {
  const wanted = new Map<string, { ref: string; platform: Platform; range: ResolvedStage["stage"]["from"]["range"] }>();
  for (const index of reachable) {
    const stage = stages[index] as ResolvedStage;
    const platform = platforms.get(index) as Platform;
    if (stage.base.kind === "image") wanted.set(imageKey(stage.base.ref, platform), { ref: stage.base.ref, platform, range: stage.stage.from.range });
    for (const dep of stageDependencies(stages, index, src)) {
      if (dep.kind === "image" && !wanted.has(imageKey(dep.ref, platform))) wanted.set(imageKey(dep.ref, platform), { ref: dep.ref, platform, range: stage.stage.from.range });
    }
  }
  const entries = await Promise.all(
    [...wanted].map(async ([key, { ref, platform, range }]): Promise<[string, ResolvedImage]> => {
      try {
        const resolved = await options.resolveImage(ref, options.signal === undefined ? { platform } : { platform, signal: options.signal });
        return [key, { ref: resolved.ref, spec: resolved.config }];
      } catch (error) {
        throw new FrontendError("KILN_IMAGE_RESOLVE", `Cannot resolve image "${ref}": ${error instanceof Error ? error.message : String(error)}`, { ranges: [range], source: src, cause: error });
      }
    }),
  );
  return new Map(entries);
}

/** Applies `# check=skip=…;error=true`: drops skipped rules, and with error=true turns findings into an error. */
function applyChecks(dockerfile: Dockerfile, warnings: readonly BuildWarning[]): BuildWarning[] {
  const directive = dockerfile.directives.find((d) => d.name === "check");
  if (directive === undefined) return [...warnings];
  const check = parseCheckDirective(directive.value);
  const kept = check.skip.includes("all") ? [] : warnings.filter((w) => !check.skip.includes(w.rule));
  if (check.error && kept.length > 0) {
    const first = kept[0] as BuildWarning;
    throw new FrontendError("KILN_CHECK_FAILED", `Cannot build: the build check "${first.rule}" failed (${first.message})`, {
      ranges: kept.flatMap((w) => w.ranges),
      source: dockerfile.source,
      hint: `Fix the Dockerfile or skip the rule with "# check=skip=${first.rule}"`,
    });
  }
  return kept;
}
