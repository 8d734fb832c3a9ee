import { exec, file, type MountSpec, type NetworkMode, type SecurityMode } from "../../solver/llb/index.js";
import { FrontendError } from "../errors.js";
import { chompHeredoc, parseHeredocMarker } from "../heredoc.js";
import type { RunInstruction } from "../instructions/types.js";
import { ShellWords } from "../shell-words.js";
import type { LowerContext } from "./context.js";
import { lowerRunMounts } from "./run-mounts.js";
import { envList, envMap, nextStepName, uppercaseKeyword, vertexOptions, withHistory, type StageState } from "./stage-state.js";

const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** The shell a shell-form command runs with: SHELL's, else /bin/sh -c. */
export function shellOf(state: StageState): readonly string[] {
  return state.config.Shell !== undefined && state.config.Shell.length > 0 ? state.config.Shell : DEFAULT_SHELL;
}

/** The args of a shell- or exec-form command line, as BuildKit's withShell. */
export function commandArgs(state: StageState, args: readonly string[], prependShell: boolean): string[] {
  return prependShell ? [...shellOf(state), args.join(" ")] : [...args];
}

/** RUN → an exec op over the stage's tree (root mount output 0), plus its history line. */
export function lowerRun(ctx: LowerContext, state: StageState, run: RunInstruction): StageState {
  let args = [...run.args];
  let direct = false;
  let displayText = run.original;
  const mounts: MountSpec[] = [{ type: "bind", target: "/", input: state.tree, selector: "/", readonly: false, output: true }];
  if (run.heredocs.length > 0) {
    const marker = args.length === 1 && run.prependShell ? parseHeredocMarker(args[0] as string) : undefined;
    const first = run.heredocs[0];
    if (marker !== undefined && first !== undefined) {
      const data = first.chomp ? chompHeredoc(first.content) : first.content;
      if (data.startsWith("#!")) {
        // A single heredoc with a shebang becomes an executable file mounted read-only and run directly.
        const script = file(null, [{ kind: "mkfile", path: `/${first.name}`, mode: 0o755, data: Buffer.from(data).toString("base64"), owner: null }], state.platform, {
          metadata: { name: "preparing inline document" },
        });
        mounts.push({ type: "bind", target: "/dev/pipes/", input: script, selector: "/", readonly: true, output: false });
        args = [`/dev/pipes/${first.name}`];
        direct = true;
      } else {
        args = [data];
      }
      displayText += ` (${summarizeHeredoc(first.content)})`;
    } else {
      // Several heredocs (or text around one): hand the reconstituted document to the shell.
      let text = args[0] ?? "";
      for (const heredoc of run.heredocs) text += `\n${heredoc.content}${heredoc.name}`;
      args = [text];
    }
  }
  const fullArgs = direct ? args : commandArgs(state, args, run.prependShell);
  const extra = lowerRunMounts(ctx, state, run);
  mounts.push(...extra);
  const network = runNetwork(run.network);
  const security = runSecurity(run.security);
  const lexer = new ShellWords({ escapeToken: ctx.escapeToken, rawQuotes: true, skipUnsetEnv: true });
  let text: string;
  try {
    text = lexer.expandWord(displayText, envMap(state)).value;
  } catch {
    text = displayText;
  }
  const step = nextStepName(state, uppercaseKeyword(text));
  const { outputs } = exec(
    {
      meta: { args: fullArgs, env: envList(state), cwd: state.workdir, user: state.user, ...(ctx.proxyEnv === undefined ? {} : { proxyEnv: ctx.proxyEnv }) },
      mounts,
      network,
      security,
      platform: state.platform,
    },
    vertexOptions(step.name, run.original, { source: ctx.info, range: run.range, stage: ctx.stage }),
  );
  const root = outputs[0] ?? null;
  return withHistory(step.state, `RUN ${runCommandString(fullArgs, state)} # buildkit`, false, { tree: root });
}

/** BuildKit's runCommandString: `|N K=V … ` before the args when the stage declared ARGs. */
function runCommandString(args: readonly string[], state: StageState): string {
  const env = envMap(state);
  const keys: string[] = [];
  const values = new Map<string, string>();
  for (const arg of state.buildArgs.toArray()) {
    if (!values.has(arg.key)) keys.push(arg.key);
    values.set(arg.key, env.get(arg.key) ?? arg.value ?? "");
  }
  const prefix = keys.length === 0 ? [] : [`|${keys.length}`, ...keys.map((k) => `${k}=${values.get(k) ?? ""}`)];
  return [...prefix, ...args].join(" ");
}

function summarizeHeredoc(doc: string): string {
  const lines = doc.trim().split("\n");
  const first = lines[0] ?? "";
  return lines.length > 1 ? `${first}...` : first;
}

function runNetwork(value: string | undefined): NetworkMode {
  if (value === undefined || value === "default") return "default";
  if (value === "none" || value === "host") return value;
  throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --network="${value}": expected default, none or host`);
}

function runSecurity(value: string | undefined): SecurityMode {
  if (value === undefined || value === "sandbox") return "sandbox";
  if (value === "insecure") return "insecure";
  throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --security="${value}": expected sandbox or insecure`);
}
