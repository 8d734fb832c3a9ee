import { file } from "../../solver/llb/index.js";
import type { WorkdirInstruction } from "../instructions/types.js";
import type { LowerContext } from "./context.js";
import { parseChown } from "./copy.js";
import { resolveWorkdir } from "./paths.js";
import { envMap, nextStepName, updateState, uppercaseKeyword, vertexOptions, withHistory, type StageState } from "./stage-state.js";
import { expandChecked } from "./undefined-var.js";

/** WORKDIR → config WorkingDir and, unless "/", a mkdir (parents, 0755, owned by USER) as BuildKit does. */
export function lowerWorkdir(ctx: LowerContext, state: StageState, instruction: WorkdirInstruction): StageState {
  const env = envMap(state);
  const path = expandChecked(ctx, state, instruction.path, instruction.range);
  // WorkdirRelativePath is reported by checks.ts, only for a stage's first WORKDIR, as BuildKit does.
  const wd = resolveWorkdir(state.config.WorkingDir ?? "/", path);
  let next: StageState = updateState(state, { workdir: wd, config: { ...state.config, WorkingDir: wd } });
  if (wd === "/") return withHistory(next, `WORKDIR ${wd}`, false);
  let text: string;
  try {
    text = ctx.shell.expandWord(instruction.original, env).value;
  } catch {
    text = instruction.original;
  }
  const step = nextStepName(next, uppercaseKeyword(text));
  const owner = state.config.User !== undefined && state.config.User !== "" ? parseChown(state.config.User) : null;
  const tree = file(state.tree, [{ kind: "mkdir", path: wd, mode: 0o755, makeParents: true, owner }], state.platform, vertexOptions(step.name, instruction.original, { source: ctx.info, range: instruction.range, stage: ctx.stage }));
  return withHistory(step.state, `WORKDIR ${wd}`, false, { tree });
}
