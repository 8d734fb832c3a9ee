import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { ownerAlive, ownerInName, ownerTag } from "../process-owner.js";
import { EXEC_ERROR_TAIL_LINES, ExecError, ExecSetupError } from "./errors.js";
import { DEFAULT_HOSTNAME, generateHosts } from "./hosts.js";
import { ensureDirInRoot, MountStubs } from "./mount-stubs.js";
import { generateResolvConf, readHostResolvConf } from "./resolv-conf.js";
import { resolveRootfsUser } from "./rootfs-user.js";
import { buildRuntimeSpec, nofileLimit } from "./runtime-spec.js";
import { OutputStream, OutputTail } from "./stdio.js";
import type { ExecMount, ExecResult, Executor, ProcessSpec, RunOptions } from "./types.js";
import { inUserNamespace } from "../snapshotter/user-namespace.js";

export interface RuncExecutorOptions {
  /** kiln's executor state: runc's `--root` lives in `STATE/runc`, bundles in `STATE/bundles/ID`. */
  readonly stateDir: string;
  /** The runc binary; default `runc` from PATH. */
  readonly runc?: string;
  /** The host's resolv.conf to derive from; default /etc/resolv.conf. */
  readonly hostResolvConf?: string;
  /**
   * Run as rootless kiln does, inside a user namespace that maps only a subordinate range: runc
   * gets `--rootless true` (cgroup permission errors ignored) and the spec asks for no cgroup
   * resources. Default: whether this process is in such a namespace.
   */
  readonly rootless?: boolean;
  /** Whether runc filters syscalls (`runc features`: linux.seccomp.enabled); default true. */
  readonly seccomp?: boolean;
}

/**
 * An Executor that runs each process as a fresh runc container (`runc run`, attached, stdio
 * piped). The container id and bundle are private to one call; the bundle is removed and, after
 * an abort or a failed start, the container is deleted (`runc delete --force`) before `run` settles.
 */
export function createRuncExecutor(options: RuncExecutorOptions): Executor {
  const runcRoot = join(options.stateDir, "runc");
  const bundles = join(options.stateDir, "bundles");
  const binary = options.runc ?? "runc";
  const nofile = nofileLimit();
  const rootless = options.rootless ?? inUserNamespace();
  const seccomp = options.seccomp ?? true;
  const globalArgs = ["--root", runcRoot, ...(rootless ? ["--rootless", "true"] : [])];
  return {
    async run(rootfs: string, process: ProcessSpec, mounts: readonly ExecMount[], runOptions: RunOptions = {}): Promise<ExecResult> {
      const signal = runOptions.signal;
      signal?.throwIfAborted();
      // The owner tag lets the next kiln on this root delete the container if this process dies.
      const id = `kiln-${ownerTag()}-${randomBytes(8).toString("hex")}`;
      const bundle = join(bundles, id);
      const user = resolveRootfsUser(rootfs, process.user);
      ensureDirInRoot(rootfs, process.cwd === "" ? "/" : process.cwd);
      const stubs = new MountStubs(rootfs, ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf", ...mounts.map((m) => m.target)]);
      mkdirSync(runcRoot, { recursive: true, mode: 0o700 });
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      try {
        const hostname = process.hostname ?? DEFAULT_HOSTNAME;
        const hostsFile = join(bundle, "hosts");
        const resolvConfFile = join(bundle, "resolv.conf");
        writeFileSync(hostsFile, generateHosts(hostname, process.extraHosts), { mode: 0o644 });
        writeFileSync(resolvConfFile, generateResolvConf(readHostResolvConf(options.hostResolvConf), process.network), { mode: 0o644 });
        const spec = buildRuntimeSpec({ rootfs, process, user, hostname, hostsFile, resolvConfFile, mounts, nofile, rootless, seccomp });
        writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
        return await runContainer({ binary, runcRoot, globalArgs, bundle, id, args: process.args, runOptions });
      } finally {
        // On the thread pool (awaited: no bundle outlives its run), not blocking other steps.
        await rm(bundle, { recursive: true, force: true });
        stubs.clean();
      }
    },
  };
}

interface ContainerRun {
  readonly binary: string;
  readonly runcRoot: string;
  /** `--root` and the other global flags every runc call gets. */
  readonly globalArgs: readonly string[];
  readonly bundle: string;
  readonly id: string;
  readonly args: readonly string[];
  readonly runOptions: RunOptions;
}

async function runContainer(run: ContainerRun): Promise<ExecResult> {
  const { binary, runcRoot, globalArgs, bundle, id, runOptions } = run;
  const logFile = join(bundle, "runc-log.json");
  const tail = new OutputTail(EXEC_ERROR_TAIL_LINES);
  const stdout = new OutputStream("stdout", tail, runOptions.stdout);
  const stderr = new OutputStream("stderr", tail, runOptions.stderr);
  const child = spawn(binary, [...globalArgs, "--log", logFile, "--log-format", "json", "run", "--bundle", bundle, id], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (chunk: Buffer) => stdout.write(chunk));
  child.stderr.on("data", (chunk: Buffer) => stderr.write(chunk));

  let aborted = false;
  let exited = false;
  const onAbort = () => {
    aborted = true;
    void killUntilExited(binary, globalArgs, id, () => exited);
  };
  runOptions.signal?.addEventListener("abort", onAbort, { once: true });

  const status = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once("error", (error) => resolve({ code: null, error }));
    child.once("close", (code) => resolve({ code }));
  });
  exited = true;
  runOptions.signal?.removeEventListener("abort", onAbort);
  stdout.end();
  stderr.end();

  if (aborted || status.code !== 0 || existsSync(join(runcRoot, id))) await runcQuiet(binary, [...globalArgs, "delete", "--force", id]);
  if (aborted) throw runOptions.signal?.reason ?? new Error("The operation was aborted");
  if (status.error !== undefined) throw new ExecSetupError(`Cannot start "${binary}": ${status.error.message}`, { cause: status.error });
  const setupFailure = runcErrors(logFile);
  if (setupFailure !== undefined) throw new ExecSetupError(`runc could not run the process: ${setupFailure}`);
  const exitCode = status.code ?? 255;
  if (exitCode === 0) return { exitCode: 0 };
  const signalName = exitCode > 128 ? signalNameOf(exitCode - 128) : undefined;
  throw new ExecError({ args: run.args, exitCode, ...(signalName === undefined ? {} : { signal: signalName }), output: tail.lines() });
}

/**
 * Sends SIGKILL to the container until `runc run` is gone: the container may not exist yet when
 * the abort comes (runc is still creating it), so a failed kill is retried while runc runs.
 */
async function killUntilExited(binary: string, globalArgs: readonly string[], id: string, exited: () => boolean): Promise<void> {
  while (!exited()) {
    await runcQuiet(binary, [...globalArgs, "kill", id, "KILL"]);
    if (exited()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function runcQuiet(binary: string, args: readonly string[]): Promise<boolean> {
  return new Promise((resolve) => execFile(binary, [...args], (error) => resolve(error === null)));
}

/** The error messages runc logged (it logs only its own failures, never the process's output). */
function runcErrors(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  const messages: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === "error" || entry.level === "fatal") && entry.msg !== undefined) messages.push(entry.msg);
    } catch {
      messages.push(line);
    }
  }
  return messages.length === 0 ? undefined : messages.join("; ");
}

function signalNameOf(number: number): string | undefined {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === number) return name;
  return undefined;
}

/**
 * Start-up recovery: force-deletes the runc containers (and their bundles) of kiln processes that
 * died while a RUN was running (`runc run` outlives a SIGKILLed parent, and so does the
 * container). Containers of live processes are left alone. Returns the ids deleted.
 */
export async function removeStaleContainers(stateDir: string, binary = "runc"): Promise<string[]> {
  const runcRoot = join(stateDir, "runc");
  const removed: string[] = [];
  for (const [dir, isContainer] of [[runcRoot, true], [join(stateDir, "bundles"), false]] as const) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const id of names) {
      const owner = ownerInName(id);
      if (owner === undefined || ownerAlive(owner)) continue;
      if (isContainer) {
        await runcQuiet(binary, ["--root", runcRoot, "delete", "--force", id]);
        removed.push(id);
      } else rmSync(join(dir, id), { recursive: true, force: true });
    }
  }
  return removed;
}
