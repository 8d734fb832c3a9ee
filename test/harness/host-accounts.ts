import { spawn } from "node:child_process";
import { REPO } from "./kiln.js";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command in the repository, resolving with its exit code and output (never rejecting on a non-zero exit). */
export function runCommand(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * useradd/userdel for the ordinary users rootless tests create, retried while another test holds
 * the lock on /etc/passwd (several test files add and remove their own users at the same time).
 */
export async function accounts(command: "useradd" | "userdel", args: readonly string[]): Promise<CommandResult> {
  for (let attempt = 0; ; attempt++) {
    const result = await runCommand(command, args);
    if (result.code === 0 || !/lock/i.test(result.stderr) || attempt >= 20) return result;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
