import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { REPO } from "../harness/kiln.js";

/** A `kiln serve` started by a test: its log so far, and a stop that waits for it to exit. */
export interface DaemonProcess {
  readonly addr: string;
  readonly child: ChildProcess;
  log(): string;
  /** Resolves when the log has matched `pattern` (polling; the test's own timeout bounds it). */
  waitForLog(pattern: RegExp): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `bin/kiln --root ROOT serve --addr unix://SOCKET [FLAGS]` and resolves once it listens. */
export async function startDaemon(root: string, socket: string, flags: readonly string[] = []): Promise<DaemonProcess> {
  const addr = `unix://${socket}`;
  const child = spawn(process.execPath, [join(REPO, "bin/kiln"), "--root", root, "serve", "--addr", addr, ...flags], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (log += c));
  const waitForLog = async (pattern: RegExp): Promise<void> => {
    while (!pattern.test(log)) {
      if (child.exitCode !== null) throw new Error(`kiln serve exited with ${child.exitCode} before logging ${pattern}: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitForLog(/listening on/);
  return {
    addr,
    child,
    log: () => log,
    waitForLog,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
