import { KilnError } from "../../solver/llb/index.js";

/** How many trailing output lines an ExecError keeps. */
export const EXEC_ERROR_TAIL_LINES = 20;

/**
 * A RUN whose process did not exit 0. `exitCode` is the process's status (128 + N when a signal
 * N ended it, as runc reports); `signal` names that signal when one is known; `output` holds the
 * last lines of stdout and stderr interleaved in arrival order. The message follows BuildKit's:
 * `process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`.
 */
export class ExecError extends KilnError {
  readonly exitCode: number;
  readonly signal: string | undefined;
  readonly args: readonly string[];
  readonly output: readonly string[];

  constructor(details: { args: readonly string[]; exitCode: number; signal?: string; output: readonly string[] }, options?: { cause?: unknown }) {
    const command = JSON.stringify(details.args.join(" "));
    const how = details.signal === undefined ? `exit code: ${details.exitCode}` : `exit code: ${details.exitCode} (killed by ${details.signal})`;
    super("KILN_EXEC_FAILED", `process ${command} did not complete successfully: ${how}`, options);
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.args = details.args;
    this.output = details.output;
  }
}

/** The executor could not start or set up a process (bad user, missing runc, invalid mount). */
export class ExecSetupError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_EXEC_SETUP_FAILED", message, options);
  }
}
