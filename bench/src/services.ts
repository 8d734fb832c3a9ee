import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mustRun } from "./measure.js";

/** A background process the harness started; `stop()` ends it by its PID. */
export interface Service {
  readonly address: string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, "SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/**
 * Debian's docker-registry on a free loopback port with filesystem storage in `dir` (emptied first),
 * configured the way test/harness/registry.ts does it; resolves once `GET /v2/` answers.
 */
export async function startRegistry(dir: string): Promise<Service> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(config, [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(join(dir, "storage"))}`,
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "",
  ].join("\n"));
  const child = spawn("/usr/bin/docker-registry", ["serve", config], { stdio: "ignore" });
  const address = `127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    try {
      const response = await fetch(`http://${address}/v2/`);
      await response.body?.cancel();
      if (response.ok) return { address, stop: async () => { await stopChild(child); rmSync(dir, { recursive: true, force: true }); } };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stopChild(child);
  throw new Error(`Cannot start docker-registry on ${address}: it never answered GET /v2/`);
}

/** The loopback forwarder to apt's own Debian mirror (apt-proxy.js beside this file). */
export async function startAptProxy(state: string): Promise<Service> {
  const portFile = join(state, "apt-proxy.port");
  rmSync(portFile, { force: true });
  const child = spawn(process.execPath, [join(import.meta.dirname, "apt-proxy.js"), portFile], { stdio: "ignore" });
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    if (existsSync(portFile) && readFileSync(portFile, "utf8").trim() !== "") {
      return { address: `http://127.0.0.1:${readFileSync(portFile, "utf8").trim()}/`, stop: () => stopChild(child) };
    }
    await sleep(100);
  }
  await stopChild(child);
  throw new Error("Cannot start the apt forwarder: it wrote no port");
}

/** The private dockerd of bench/lib/dockerd.sh (started idempotently, stopped by its pidfile's PID). */
export async function startDockerd(benchDir: string, state: string): Promise<Service> {
  const script = join(benchDir, "lib", "dockerd.sh");
  const env = { BENCH_STATE: state };
  await mustRun("bash", [script, "start"], { env });
  return { address: join(state, "docker", "docker.sock"), stop: async () => void (await mustRun("bash", [script, "stop"], { env })) };
}
