import type { HistoryEntry, ImageConfig, Platform, SourceLocation, SourceRange, Tree, VertexOptions } from "../../solver/llb/index.js";
import type { ArgDeclaration } from "../instructions/types.js";
import { VersionedList, VersionedTable } from "./versioned-log.js";

/** An empty JSON object, as image configs write ExposedPorts and Volumes entries. */
export type EmptyObject = Record<string, never>;

/**
 * A stage being lowered, as an immutable value (each instruction returns a new one): the tree so
 * far, the process environment (image Env, ENV, and ARG values, in order), the image config and
 * history, the ARGs declared (for RUN history), and the progress step counter.
 *
 * The collections that grow with the Dockerfile (environment, Env, Labels, ExposedPorts, Volumes,
 * history, declared ARGs) are versioned logs, so that a step costs the same at instruction 2,000
 * as at instruction 2: copying them per instruction made lowering quadratic. `imageConfig()` and
 * `history.toArray()` give the plain values.
 */
export interface StageState {
  /** The name progress shows ("" when the Dockerfile has one stage). */
  readonly displayName: string;
  readonly tree: Tree;
  readonly platform: Platform;
  /** The process environment by name (ARG values included). */
  readonly env: VersionedTable<string>;
  /** The image config's fields other than the four below. */
  readonly config: Omit<ImageConfig, "Env" | "Labels" | "ExposedPorts" | "Volumes">;
  /** The image config's Env entries (`KEY=VALUE`, as written) by key. */
  readonly configEnv: VersionedTable<string>;
  /** Labels, ExposedPorts and Volumes: undefined while the config has no such field. */
  readonly labels: VersionedTable<string> | undefined;
  readonly exposedPorts: VersionedTable<EmptyObject> | undefined;
  readonly volumes: VersionedTable<EmptyObject> | undefined;
  readonly history: VersionedList<HistoryEntry>;
  readonly buildArgs: VersionedList<ArgDeclaration>;
  readonly workdir: string;
  readonly user: string;
  /** CMD was set in this stage (then ENTRYPOINT keeps it). */
  readonly cmdSet: boolean;
  readonly step: number;
  readonly totalSteps: number;
}

/**
 * `state` with `changes` applied, as a new value. Written out field by field on purpose: an object
 * spread of this many fields takes V8's slow path, and lowering makes a few states per instruction.
 * Every field of StageState must be listed here (the return type keeps that checked).
 */
export function updateState(state: StageState, changes: Partial<StageState>, history?: VersionedList<HistoryEntry>): StageState {
  return {
    displayName: changes.displayName ?? state.displayName,
    tree: "tree" in changes ? (changes.tree as Tree) : state.tree,
    platform: changes.platform ?? state.platform,
    env: changes.env ?? state.env,
    config: changes.config ?? state.config,
    configEnv: changes.configEnv ?? state.configEnv,
    labels: "labels" in changes ? changes.labels : state.labels,
    exposedPorts: "exposedPorts" in changes ? changes.exposedPorts : state.exposedPorts,
    volumes: "volumes" in changes ? changes.volumes : state.volumes,
    history: history ?? changes.history ?? state.history,
    buildArgs: changes.buildArgs ?? state.buildArgs,
    workdir: changes.workdir ?? state.workdir,
    user: changes.user ?? state.user,
    cmdSet: changes.cmdSet ?? state.cmdSet,
    step: changes.step ?? state.step,
    totalSteps: changes.totalSteps ?? state.totalSteps,
  };
}

const NO_CHANGES: Partial<StageState> = {};

/** BuildKit's history comment for Dockerfile steps. */
export const HISTORY_COMMENT = "buildkit.dockerfile.v0";

/** The key of a config Env entry (`KEY=VALUE`, or a bare `KEY`). */
export function envEntryKey(entry: string): string {
  const eq = entry.indexOf("=");
  return eq === -1 ? entry : entry.slice(0, eq);
}

/** The state with `key` set in the process environment: replaced in place when present, appended otherwise. */
export function setEnv(state: StageState, key: string, value: string): StageState {
  return updateState(state, { env: state.env.set(key, value) });
}

/** The state with `key` set in the image config's Env the same way. */
export function setConfigEnv(state: StageState, key: string, value: string): StageState {
  return updateState(state, { configEnv: state.configEnv.set(key, `${key}=${value}`) });
}

/** The env as a lookup for shell-word expansion (no copy: the versioned table answers lookups itself). */
export function envMap(state: StageState): VersionedTable<string> {
  return state.env;
}

/** The env as an exec op takes it. */
export function envList(state: StageState): string[] {
  const out: string[] = [];
  for (const [k, v] of state.env.entries()) out.push(`${k}=${v}`);
  return out;
}

/** The image config the stage has built so far, as a plain value. */
export function imageConfig(state: StageState): ImageConfig {
  const objects = (table: VersionedTable<EmptyObject>): Record<string, EmptyObject> => {
    const out: Record<string, EmptyObject> = {};
    for (const key of table.keys()) out[key] = {};
    return out;
  };
  return {
    ...state.config,
    Env: [...state.configEnv.entries().values()],
    ...(state.labels === undefined ? {} : { Labels: plainObject(state.labels) }),
    ...(state.exposedPorts === undefined ? {} : { ExposedPorts: objects(state.exposedPorts) }),
    ...(state.volumes === undefined ? {} : { Volumes: objects(state.volumes) }),
  };
}

/** A table as a plain object, in the table's order (a loop: Object.fromEntries is slower for large tables). */
function plainObject<V>(table: VersionedTable<V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [key, value] of table.entries()) out[key] = value;
  return out;
}

/** Appends a history line (`emptyLayer` for config-only steps), applying `changes` in the same step. */
export function withHistory(state: StageState, createdBy: string, emptyLayer: boolean, changes: Partial<StageState> = NO_CHANGES): StageState {
  const entry: HistoryEntry = emptyLayer ? { created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true } : { created_by: createdBy, comment: HISTORY_COMMENT };
  return updateState(state, changes, state.history.append(entry));
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
  return { name: prefix + text, state: updateState(state, { step }) };
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
