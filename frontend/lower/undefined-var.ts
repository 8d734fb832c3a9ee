import type { SourceRange } from "../../solver/llb/index.js";
import { ruleUrl } from "../checks.js";
import type { ShellWords } from "../shell-words.js";
import { suggestName } from "../suggest.js";
import type { LowerContext } from "./context.js";
import { envMap, type StageState } from "./stage-state.js";

/**
 * Expands `word` against the stage's environment (with `lexer`, default the Dockerfile's) and
 * reports BuildKit's UndefinedVar for every variable it names that is neither set (base image Env,
 * ENV, an ARG with a value) nor declared by an ARG of the stage, with a "did you mean" from the
 * set names (compared with case, as BuildKit does on Linux). Used for the words BuildKit's
 * dispatcher checks: ENV, LABEL, ARG defaults, COPY/ADD sources, destination, --chown and
 * --chmod, heredoc bodies that expand, WORKDIR, USER, VOLUME, STOPSIGNAL and RUN --mount values.
 * Throws ShellWordsError as expandWord does.
 */
export function expandChecked(ctx: LowerContext, state: StageState, word: string, range: SourceRange, lexer: ShellWords = ctx.shell): string {
  const env = envMap(state);
  const expanded = lexer.expandWord(word, env);
  if (expanded.unmatched.size === 0) return expanded.value;
  const declared = new Set(state.buildArgs.toArray().map((arg) => arg.key));
  for (const name of expanded.unmatched) {
    if (declared.has(name)) continue;
    const suggestion = suggestName(name, env.keys(), true);
    ctx.warn({
      rule: "UndefinedVar",
      message: `Usage of undefined variable '$${name}'${suggestion === undefined ? "" : ` (did you mean $${suggestion}?)`}`,
      ranges: [range],
      url: ruleUrl("UndefinedVar"),
    });
  }
  return expanded.value;
}
