import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One finished command: exit code, wall time, and the peak resident set of its process tree's largest member. */
export interface CommandRun {
  readonly code: number;
  readonly wallMs: number;
  /** Maximum RSS in KiB as GNU time reports it (`%M`: the largest of the process and its waited-for children). */
  readonly peakRssKiB: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the command (SIGKILL to its process group) after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Wrap the command in /usr/bin/time to learn its peak memory. */
  readonly peakMemory?: boolean;
}

const TIME = "/usr/bin/time";

/**
 * Runs a command to completion and measures its wall time with a monotonic clock, from spawn to
 * exit. Output is kept (the last 64 KiB of each stream) for error reports, never parsed for timing.
 */
export async function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandRun> {
  const scratch = options.peakMemory === true ? mkdtempSync(join(tmpdir(), "kiln-bench-time-")) : undefined;
  const timeFile = scratch === undefined ? undefined : join(scratch, "rss");
  const [file, argv] = timeFile === undefined ? [command, args] : [TIME, ["-f", "%M", "-o", timeFile, command, ...args]];
  const started = process.hrtime.bigint();
  const result = await new Promise<Omit<CommandRun, "wallMs" | "peakRssKiB">>((resolve, reject) => {
    const child = spawn(file, argv, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout = (stdout + c).slice(-65536)));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr = (stderr + c).slice(-65536)));
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, options.timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      if (timer !== undefined) clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, timedOut });
    });
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  let peakRssKiB: number | undefined;
  if (scratch !== undefined && timeFile !== undefined) {
    try {
      const lines = readFileSync(timeFile, "utf8").trim().split("\n");
      const value = Number(lines.at(-1));
      peakRssKiB = Number.isFinite(value) ? value : undefined;
    } catch {
      peakRssKiB = undefined;
    }
    rmSync(scratch, { recursive: true, force: true });
  }
  return { ...result, wallMs, peakRssKiB };
}

/** Runs a command that must succeed (set-up and clean-up steps, never timed); throws with its output otherwise. */
export async function mustRun(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const run = await runCommand(command, args, options);
  if (run.code !== 0) {
    throw new Error(`"${[command, ...args].join(" ")}" exited with ${run.code}: ${lastLines(run.stderr || run.stdout, 8)}`);
  }
  return run.stdout;
}

/** The last `n` non-empty lines of a text, joined with " / ", for one-line error summaries. */
export function lastLines(text: string, n: number): string {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "").slice(-n).join(" / ");
}
