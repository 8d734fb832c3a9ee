import { spawn } from "node:child_process";
import { KilnError } from "../../solver/llb/index.js";

/** A git command that failed: its arguments (credentials redacted), exit status and stderr. */
export class GitCommandError extends KilnError {
  readonly stderr: string;
  constructor(message: string, stderr: string, options?: { cause?: unknown }) {
    super("KILN_GIT_COMMAND_FAILED", message, options);
    this.stderr = stderr;
  }
}

export interface GitRunOptions {
  /** Becomes HOME: git reads no user configuration, and writes nothing outside it. */
  readonly home: string;
  readonly signal: AbortSignal;
  /** Receives stderr as it arrives (progress), besides its being kept for errors. */
  readonly onStderr?: (text: string) => void;
}

/** `https://user:secret@host/…` → `https://user:xxxxx@host/…` (BuildKit's urlutil.RedactCredentials). */
export function redactCredentials(text: string): string {
  return text.replace(/([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/@:\s]*):[^/@\s]*@/gu, "$1:xxxxx@");
}

/**
 * Runs the `git` binary (Debian package git) with `args` and returns its stdout. Git sees a
 * clean environment: no system or global config, no terminal prompts (a remote that asks for
 * credentials fails instead of hanging), the C locale, and `HOME` set to `options.home`.
 * A non-zero exit is a GitCommandError whose message ends with git's last stderr line.
 */
export function runGit(args: readonly string[], options: GitRunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, {
      stdio: ["ignore", "pipe", "pipe"],
      signal: options.signal,
      env: {
        PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        HOME: options.home,
        LC_ALL: "C",
        GIT_TERMINAL_PROMPT: "0",
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_CONFIG_GLOBAL: "/dev/null",
        GIT_ASKPASS: "/bin/false",
        GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
      },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      err.push(chunk);
      options.onStderr?.(chunk.toString("utf8"));
    });
    child.on("error", (error) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new GitCommandError(`Cannot run git: the "git" program is not installed (Debian package git)`, "", { cause: error }));
      } else reject(error);
    });
    child.on("close", (code, signal) => {
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) return resolve(Buffer.concat(out).toString("utf8"));
      const last = stderr.trim().split("\n").filter((l) => l.trim() !== "").pop() ?? "";
      const what = redactCredentials(`git ${args.join(" ")}`);
      const why = signal === null ? `exited with code ${code ?? "?"}` : `was killed by ${signal}`;
      reject(new GitCommandError(`Command "${what}" ${why}${last === "" ? "" : `: ${redactCredentials(last)}`}`, redactCredentials(stderr)));
    });
  });
}
