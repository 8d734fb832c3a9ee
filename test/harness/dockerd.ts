import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Debian's docker CLI (docker.io), by path: another `docker` may be earlier on PATH. */
const DOCKER = "/usr/bin/docker";

/** A private docker daemon: its own data root, exec root and socket; never the system's. */
export interface PrivateDockerd {
  readonly socket: string;
  /** Runs `docker -H unix://SOCKET ...args` and returns its stdout. */
  docker(args: readonly string[]): Promise<string>;
  /** Stops the daemon by its PID and deletes its directories. */
  stop(): Promise<void>;
}

/**
 * Starts `dockerd` with no bridge and no iptables (containers run with `--network=none`), its
 * data root, exec root, pid file and socket in a fresh temp directory, and resolves once
 * `docker info` answers. Throws with the daemon's last output when it cannot start.
 */
export async function startDockerd(): Promise<PrivateDockerd> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-dockerd-"));
  const socket = join(dir, "docker.sock");
  const child = spawn(
    "dockerd",
    [
      "--bridge=none", "--iptables=false", "--ip-masq=false",
      "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"),
      "--pidfile", join(dir, "docker.pid"), "-H", `unix://${socket}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let output = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output = (output + chunk).slice(-4000);
  });
  const killOnExit = (): void => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
  };
  process.once("exit", killOnExit);
  const docker = async (args: readonly string[]): Promise<string> => (await execFileAsync(DOCKER, ["-H", `unix://${socket}`, ...args], { maxBuffer: 64 << 20 })).stdout;
  const stop = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, "SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    // dockerd may leave its overlay mounts behind a crash; a clean stop unmounts them.
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) break;
    try {
      await docker(["info", "--format", "{{.ServerVersion}}"]);
      return { socket, docker, stop };
    } catch {
      await sleep(100);
    }
  }
  await stop();
  throw new Error(`Cannot start a private dockerd: ${output.trim() || "it never answered docker info"}`);
}
