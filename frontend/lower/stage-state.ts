import type { HistoryEntry, ImageConfig, Platform, SourceLocation, SourceRange, Tree, VertexOptions } from "../../solver/llb/index.js";
import type { ArgDeclaration } from "../instructions/types.js";

/**
 * A stage being lowered, as an immutable value (each instruction returns a new one): the tree so
 * far, the process environment (image Env, ENV, and ARG values, in order), the image config and
 * history, the ARGs declared (for RUN history), and the progress step counter.
 */
export interface StageState {
  /** The name progress shows ("" when the Dockerfile has one stage). */
  readonly displayName: string;
  readonly tree: Tree;
  readonly platform: Platform;
  readonly env: readonly (readonly [string, string])[];
  readonly config: ImageConfig;
  readonly history: readonly HistoryEntry[];
  readonly buildArgs: readonly ArgDeclaration[];
  readonly workdir: string;
  readonly user: string;
  /** CMD was set in this stage (then ENTRYPOINT keeps it). */
  readonly cmdSet: boolean;
  readonly step: number;
  readonly totalSteps: number;
}

/** BuildKit's history comment for Dockerfile steps. */
export const HISTORY_COMMENT = "buildkit.dockerfile.v0";

/** `env` with `key` set: replaced in place when present, appended otherwise. */
export function setEnv(env: readonly (readonly [string, string])[], key: string, value: string): (readonly [string, string])[] {
  const index = env.findIndex(([k]) => k === key);
  if (index === -1) return [...env, [key, value]];
  return env.map((entry, i) => (i === index ? [key, value] : entry));
}

/** `KEY=VALUE` list with `key` set the same way (for image config Env). */
export function setEnvList(list: readonly string[] | undefined, key: string, value: string): string[] {
  const out = [...(list ?? [])];
  const index = out.findIndex((e) => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e) === key);
  if (index === -1) out.push(`${key}=${value}`);
  else out[index] = `${key}=${value}`;
  return out;
}

const envMaps = new WeakMap<StageState["env"], ReadonlyMap<string, string>>();

/**
 * The env as a lookup map for shell-word expansion. Built once per env value (an env array is
 * never changed, only replaced), not per expanded word: a Dockerfile with hundreds of ENVs
 * otherwise rebuilt a map of all of them for every word of every instruction.
 */
export function envMap(state: StageState): ReadonlyMap<string, string> {
  let map = envMaps.get(state.env);
  if (map === undefined) {
    map = new Map(state.env);
    envMaps.set(state.env, map);
  }
  return map;
}

/** The env as an exec op takes it. */
export function envList(state: StageState): string[] {
  return state.env.map(([k, v]) => `${k}=${v}`);
}

/** Appends a history line (`emptyLayer` for config-only steps). */
export function withHistory(state: StageState, createdBy: string, emptyLayer: boolean): StageState {
  const entry: HistoryEntry = emptyLayer ? { created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true } : { created_by: createdBy, comment: HISTORY_COMMENT };
  return { ...state, history: [...state.history, entry] };
}

/**
 * The progress name of the next numbered step, as BuildKit's prefixCommand: `[builder 2/5] RUN make`,
 * the index padded to the width of the total; returns the state with the counter advanced.
 */
export function nextStepName(state: StageState, text: string): { readonly name: string; readonly state: StageState } {
  if (state.totalSteps === 0) return { name: text, state };
  const step = state.step + 1;
  const width = String(state.totalSteps).length;
  const prefix = `[${state.displayName === "" ? "" : `${state.displayName} `}${String(step).padStart(width, " ")}/${state.totalSteps}] `;
  return { name: prefix + text, state: { ...state, step } };
}

/** Uppercases the first word (the keyword) as BuildKit's uppercaseCmd. */
export function uppercaseKeyword(text: string): string {
  const space = text.indexOf(" ");
  return space === -1 ? text.toUpperCase() : text.slice(0, space).toUpperCase() + text.slice(space);
}

/**
 * Vertex options for an op made by one instruction: its progress name, command description and range.
 * `stage` (the stage's name, or its index when unnamed) is recorded as `description["kiln.stage"]`,
 * so a caller can find a stage's vertices (`--no-cache-filter`); metadata is never part of a digest.
 */
export function vertexOptions(
  name: string,
  original: string,
  location: { readonly source: SourceLocation["source"]; readonly range: SourceRange; readonly stage?: string | undefined },
): VertexOptions {
  return {
    metadata: {
      name,
      description: {
        "com.docker.dockerfile.v1.command": original,
        ...(location.stage === undefined ? {} : { "kiln.stage": location.stage }),
      },
    },
    locations: [{ source: location.source, ranges: [location.range] }],
  };
}
