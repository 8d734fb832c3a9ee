import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, readdirSync, renameSync, writeFileSync, type WriteStream } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { KilnError, type Digest } from "../solver/llb/index.js";
import type { ProgressEvent } from "../solver/index.js";

/** How many builds' logs are kept under the state root. */
export const KEPT_BUILDS = 20;

/** One step of a recorded build, numbered as plain progress numbers it (`#3`). */
export interface LoggedStep {
  readonly number: number;
  readonly digest: Digest;
  readonly name: string;
  readonly state: "running" | "cached" | "done" | "failed";
  /** The step's full output, `LOGDIR/ID/N.log`; absent when it printed nothing. */
  readonly log?: string;
}

/** What `build.json` in a build's log directory says. */
export interface LoggedBuild {
  readonly id: string;
  readonly started: number;
  readonly finished?: number;
  readonly state: "running" | "done" | "failed";
  readonly error?: string;
  readonly steps: readonly LoggedStep[];
}

/** A new build id: sortable by start time, unique across processes. */
export function newBuildId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

/**
 * Keeps every step's full output on disk (`ROOT/logs/ID/N.log`, and `build.json` describing
 * the steps), so no view ever has to clip what a build printed: `kiln logs` reads it back.
 * `push` never waits (writes are queued on per-step streams): logging must not slow the build.
 * The directory keeps the last KEPT_BUILDS builds.
 */
export class BuildLogWriter {
  readonly id: string;
  readonly dir: string;
  readonly #steps = new Map<Digest, { number: number; name: string; state: LoggedStep["state"]; stream?: WriteStream }>();
  readonly #started = Date.now();
  #ready: Promise<void>;

  constructor(logsDir: string, id: string) {
    this.id = id;
    this.dir = join(logsDir, id);
    this.#ready = Promise.resolve().then(() => {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#writeJson(undefined);
    });
    this.#ready.catch(() => {});
  }

  /** Records one event. Never throws. */
  push(event: ProgressEvent): void {
    if (event.type === "warning" || event.type === "vertex.bytes") return;
    let step = this.#steps.get(event.digest);
    if (step === undefined) {
      step = { number: this.#steps.size + 1, name: "", state: "running" };
      this.#steps.set(event.digest, step);
    }
    switch (event.type) {
      case "vertex.started":
        step.name = event.name;
        break;
      case "vertex.cached":
        step.name = event.name;
        step.state = "cached";
        break;
      case "vertex.completed":
        step.state = "done";
        break;
      case "vertex.failed":
        step.state = "failed";
        break;
      case "vertex.log": {
        if (step.stream === undefined) {
          const path = join(this.dir, `${step.number}.log`);
          // The stream opens lazily after the directory exists; writes before that are buffered.
          const stream = createWriteStream(path, { flags: "a", mode: 0o600 });
          stream.cork();
          void this.#ready.then(() => stream.uncork(), () => stream.destroy());
          stream.on("error", () => {});
          step.stream = stream;
        }
        step.stream.write(event.data);
        break;
      }
    }
  }

  /** Closes the step logs and writes the final build.json, then drops the oldest builds. */
  async finish(error: unknown): Promise<void> {
    await this.#ready.catch(() => {});
    await Promise.all(
      [...this.#steps.values()].map((s) => (s.stream === undefined ? undefined : new Promise<void>((r) => s.stream!.end(r)))),
    );
    this.#writeJson(error === undefined ? { state: "done" } : { state: "failed", error: error instanceof Error ? error.message : String(error) });
    await pruneBuildLogs(join(this.dir, ".."), KEPT_BUILDS);
  }

  /** Synchronous: one small file and a rename cost less inline than their thread-pool trips. */
  #writeJson(end: { state: "done" | "failed"; error?: string } | undefined): void {
    const build: LoggedBuild = {
      id: this.id,
      started: this.#started,
      ...(end === undefined ? { state: "running" } : { finished: Date.now(), ...end }),
      steps: [...this.#steps].map(([digest, s]) => ({
        number: s.number,
        digest,
        name: s.name,
        state: s.state,
        ...(s.stream === undefined ? {} : { log: `${s.number}.log` }),
      })),
    };
    const tmp = join(this.dir, `.build.json.${process.pid}`);
    writeFileSync(tmp, `${JSON.stringify(build, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, join(this.dir, "build.json"));
  }
}

/** The recorded builds, newest first. */
export async function listBuildLogs(logsDir: string): Promise<LoggedBuild[]> {
  let names: string[];
  try {
    names = await readdir(logsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const builds: LoggedBuild[] = [];
  for (const name of names.sort().reverse()) {
    try {
      builds.push(JSON.parse(await readFile(join(logsDir, name, "build.json"), "utf8")) as LoggedBuild);
    } catch {
      // A build whose directory is still being created, or was pruned meanwhile.
    }
  }
  return builds;
}

/** Finds a build by id or id prefix; `undefined` = the newest. Throws when none or several match. */
export async function findBuildLog(logsDir: string, id: string | undefined): Promise<LoggedBuild> {
  const builds = await listBuildLogs(logsDir);
  if (id === undefined) {
    const newest = builds[0];
    if (newest === undefined) throw new KilnError("KILN_LOGS_NOT_FOUND", `Cannot show logs: no build recorded under "${logsDir}"`);
    return newest;
  }
  const matches = builds.filter((b) => b.id.startsWith(id));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new KilnError("KILN_LOGS_NOT_FOUND", `Cannot show logs of build "${id}": no recorded build has that id; the last ${KEPT_BUILDS} are kept`);
  throw new KilnError("KILN_LOGS_AMBIGUOUS", `Cannot show logs of build "${id}": ${matches.length} builds start with it`);
}

/** Finds a step by number (`3` or `#3`), digest prefix, or a piece of its name. */
export function findStep(build: LoggedBuild, query: string): LoggedStep {
  const n = /^#?(\d+)$/.exec(query);
  const matches = n !== null
    ? build.steps.filter((s) => s.number === Number(n[1]))
    : build.steps.filter((s) => s.digest.startsWith(query) || s.digest.slice("sha256:".length).startsWith(query) || s.name.includes(query));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new KilnError("KILN_LOGS_NOT_FOUND", `Cannot show step "${query}" of build "${build.id}": no step matches; it has steps 1 to ${build.steps.length}`);
  throw new KilnError("KILN_LOGS_AMBIGUOUS", `Cannot show step "${query}" of build "${build.id}": ${matches.length} steps match, name one by number`);
}

/** Removes all but the newest `keep` build log directories. */
export async function pruneBuildLogs(logsDir: string, keep: number): Promise<void> {
  let all: string[];
  try {
    all = readdirSync(logsDir);
  } catch {
    all = [];
  }
  const names = all.filter((n) => !n.startsWith(".")).sort();
  for (const name of names.slice(0, Math.max(0, names.length - keep))) await rm(join(logsDir, name), { recursive: true, force: true });
}
