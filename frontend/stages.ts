import { FrontendError } from "./errors.js";
import type { Stage } from "./dockerfile.js";
import type { SourceFile } from "./source-file.js";
import { closest } from "./instructions/parse-instruction.js";
import { parseRunMount } from "./lower/run-mounts.js";
import type { SourceRange } from "../solver/llb/index.js";
import { findNamedContext, NO_NAMED_CONTEXTS, type NamedContexts } from "./named-contexts.js";

/**
 * A stage with its FROM expanded: `base` is an earlier stage's index, an image reference, a named
 * local context, or scratch. `replaced`: a named context has the stage's name, so the context is
 * the stage and its instructions are not lowered (BuildKit's named-context override).
 */
export interface ResolvedStage {
  readonly stage: Stage;
  /** Lower-cased name, or undefined. */
  readonly name?: string;
  readonly base:
    | { readonly kind: "stage"; readonly index: number }
    | { readonly kind: "image"; readonly ref: string }
    | { readonly kind: "context"; readonly name: string }
    | { readonly kind: "scratch" };
  readonly replaced?: boolean;
  /** The expanded `--platform`, if given. */
  readonly platform?: string;
}

/** What a `--from` (or `from=`) names: a stage by index, an image, or a named local context (by its local source name). */
export type FromReference =
  | { readonly kind: "stage"; readonly index: number }
  | { readonly kind: "image"; readonly ref: string }
  | { readonly kind: "context"; readonly name: string };

/** Finds the stage `name` (case-insensitive) or index `"0"`, `"1"`…; undefined for anything else. */
export function findStage(stages: readonly ResolvedStage[], name: string): number | undefined {
  if (/^\d+$/u.test(name)) {
    const index = Number(name);
    return index < stages.length ? index : undefined;
  }
  const lower = name.toLowerCase();
  const found = stages.find((s) => s.name === lower);
  return found?.stage.index;
}

/**
 * Resolves `--from=value` used at `stages[current]`: a stage before it, else a named context of
 * that name (`contexts`), else an image.
 */
export function resolveFromReference(
  stages: readonly ResolvedStage[],
  current: number,
  value: string,
  range: SourceRange,
  source: SourceFile,
  contexts: NamedContexts = NO_NAMED_CONTEXTS,
): FromReference {
  if (/^\d+$/u.test(value)) {
    const index = Number(value);
    if (index >= stages.length) {
      throw new FrontendError("KILN_STAGE_NOT_FOUND", `Cannot copy from stage index ${index}: the Dockerfile has ${stages.length} stage(s)`, { ranges: [range], source });
    }
    return checkOrder(stages, current, index, value, range, source);
  }
  const index = findStage(stages, value);
  if (index === undefined) {
    const named = findNamedContext(contexts, value);
    if (named !== undefined) return named.kind === "local" ? { kind: "context", name: named.name } : { kind: "image", ref: named.ref };
    return { kind: "image", ref: value };
  }
  return checkOrder(stages, current, index, value, range, source);
}

function checkOrder(stages: readonly ResolvedStage[], current: number, index: number, value: string, range: SourceRange, source: SourceFile): FromReference {
  if (index === current) {
    throw new FrontendError("KILN_STAGE_CYCLE", `Cannot use stage "${value}" from itself: that is a dependency cycle`, { ranges: [range], source });
  }
  if (index > current) {
    const name = stages[current]?.name ?? String(current);
    throw new FrontendError("KILN_STAGE_ORDER", `Cannot copy from stage "${value}": it must be defined before the current stage "${name}"`, { ranges: [range], source });
  }
  return { kind: "stage", index };
}

/** Each stage's direct dependencies (its base stage, `COPY --from` and `RUN --mount from=` stages and images). */
export function stageDependencies(stages: readonly ResolvedStage[], index: number, source: SourceFile, contexts: NamedContexts = NO_NAMED_CONTEXTS): FromReference[] {
  const stage = stages[index] as ResolvedStage;
  const deps: FromReference[] = [];
  if (stage.base.kind === "stage") deps.push(stage.base);
  if (stage.replaced === true) return deps;
  for (const instruction of stage.stage.instructions) {
    if (instruction.kind === "copy" && instruction.from !== undefined) {
      deps.push(resolveFromReference(stages, index, instruction.from, instruction.range, source, contexts));
    }
    if (instruction.kind === "run") {
      for (const text of instruction.mounts) {
        let from: string | undefined;
        try {
          from = parseRunMount(text).from;
        } catch {
          from = undefined; // reported with its range when the RUN is lowered
        }
        if (from !== undefined && !from.includes("$")) deps.push(resolveFromReference(stages, index, from, instruction.range, source, contexts));
      }
    }
  }
  return deps;
}

/** The stage `target` names (name or index), or the last stage; FrontendError listing the stages otherwise. */
export function resolveTarget(stages: readonly ResolvedStage[], target: string | undefined): number {
  if (target === undefined || target === "") return stages.length - 1;
  const index = findStage(stages, target);
  if (index !== undefined) return index;
  const names = stages.map((s) => s.name).filter((n) => n !== undefined);
  const suggestion = closest(target, names);
  throw new FrontendError("KILN_STAGE_NOT_FOUND", `Cannot build target "${target}": no stage has that name`, {
    hint: suggestion !== undefined ? `Did you mean "${suggestion}"?` : names.length > 0 ? `Stages are ${names.map((n) => `"${n}"`).join(", ")}` : "The stages have no names; use an index such as 0",
  });
}

/** Indexes of the stages the target needs, in Dockerfile order. */
export function reachableStages(stages: readonly ResolvedStage[], target: number, source: SourceFile, contexts: NamedContexts = NO_NAMED_CONTEXTS): number[] {
  const seen = new Set<number>();
  const visit = (index: number): void => {
    if (seen.has(index)) return;
    seen.add(index);
    for (const dep of stageDependencies(stages, index, source, contexts)) if (dep.kind === "stage") visit(dep.index);
  };
  visit(target);
  return [...seen].sort((a, b) => a - b);
}
