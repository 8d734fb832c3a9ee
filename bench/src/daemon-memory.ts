import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { lastLines, mustRun, runCommand } from "./measure.js";

/** The resident size of `kiln serve` after a first and a last number of client builds. */
export type DaemonMemory =
  | { readonly kind: "ok"; readonly builds: readonly [number, number]; readonly rssKiB: readonly [number, number] }
  | { readonly kind: "unsupported" | "failed"; readonly reason: string };

function residentKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match?.[1] === undefined) throw new Error(`Cannot read VmRSS of process ${pid}`);
  return Number(match[1]);
}

/**
 * Issue 7's flat-memory check: starts `kiln serve` on a socket under `state` (its own root, the
 * busybox base imported first), sends `last` builds of one Dockerfile through `kiln --addr`, and
 * reads the daemon's VmRSS a second after the `first` and after the `last` build (at rest). The daemon is stopped by its PID.
 */
export async function measureDaemonMemory(kilnDir: string, state: string, job: { dockerfile: string; context: string; busyboxTar: string }, first: number, last: number): Promise<DaemonMemory> {
  const kiln = join(kilnDir, "bin", "kiln");
  const root = join(state, "kiln-daemon-root");
  const socket = join(state, "kiln-daemon", "kiln.sock");
  rmSync(root, { recursive: true, force: true });
  rmSync(join(state, "kiln-daemon"), { recursive: true, force: true });
  await mustRun(process.execPath, [kiln, "--root", root, "import", job.busyboxTar, "busybox:latest"]);
  const daemon = spawn(process.execPath, [kiln, "--root", root, "serve", "--addr", `unix://${socket}`], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  daemon.stderr.setEncoding("utf8").on("data", (c: string) => (stderr = (stderr + c).slice(-4000)));
  try {
    for (let i = 0; i < 300 && !existsSync(socket); i++) {
      if (daemon.exitCode !== null) break;
      await sleep(100);
    }
    if (!existsSync(socket) || daemon.pid === undefined) {
      const reason = lastLines(stderr, 1) || "it never opened its socket";
      return /unknown command/i.test(stderr) ? { kind: "unsupported", reason } : { kind: "failed", reason: `kiln serve: ${reason}` };
    }
    const rss: number[] = [];
    for (let i = 1; i <= last; i++) {
      const run = await runCommand(process.execPath, [kiln, "--addr", `unix://${socket}`, "build", "--progress", "quiet", "-t", "bench/daemon:latest", "-f", job.dockerfile, job.context], { timeoutMs: 120_000 });
      if (run.code !== 0) return { kind: "failed", reason: `build ${i} through the daemon: ${lastLines(run.stderr || run.stdout, 2)}` };
      if (i === first || i === last) {
        // The resident size at rest: the daemon collects garbage once it falls idle (cli/daemon/idle-gc.ts).
        await sleep(1000);
        rss.push(residentKiB(daemon.pid));
      }
    }
    return { kind: "ok", builds: [first, last], rssKiB: [rss[0]!, rss[1]!] };
  } finally {
    if (daemon.exitCode === null && daemon.pid !== undefined) {
      const exited = new Promise<void>((resolve) => daemon.once("exit", () => resolve()));
      process.kill(daemon.pid, "SIGTERM");
      const timer = setTimeout(() => daemon.pid !== undefined && daemon.exitCode === null && process.kill(daemon.pid, "SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(root, { recursive: true, force: true });
  }
}
