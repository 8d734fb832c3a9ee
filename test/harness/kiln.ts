import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { ProgressEvent } from "../../solver/progress.js";

export const REPO = resolve(import.meta.dirname, "../..");
const KILN = join(REPO, "bin", "kiln");

/** What one run of the real `bin/kiln` executable did. */
export interface KilnRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/kiln --root ROOT ...args` (the built CLI, as a user would), collecting its output; `stdin` is fed to it when given. */
export function runKiln(
  root: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: Buffer } = {},
): Promise<KilnRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [KILN, "--root", root, ...args], {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    // No input: stdin closes at once, as with </dev/null.
    child.stdin.end(options.stdin);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

/** The progress events of a `--progress rawjson` run (one JSON object per stderr line). */
export function progressEvents(stderr: string): ProgressEvent[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as ProgressEvent);
}

/** A scratch directory for one test: a state root and a place for contexts and outputs. */
export interface Scratch {
  readonly dir: string;
  readonly root: string;
  /** Writes files (path → content) under `dir/name` and returns that directory. */
  context(name: string, files: Readonly<Record<string, string>>): Promise<string>;
  dispose(): Promise<void>;
}

export async function createScratch(): Promise<Scratch> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-test-"));
  const root = join(dir, "root");
  return {
    dir,
    root,
    async context(name, files) {
      const contextDir = join(dir, name);
      for (const [path, content] of Object.entries(files)) {
        await mkdir(dirname(join(contextDir, path)), { recursive: true });
        await writeFile(join(contextDir, path), content);
      }
      await mkdir(contextDir, { recursive: true });
      return contextDir;
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Mount points under `dir` that are still mounted: after a build, there must be none. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`));
}
