import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { lastLines, mustRun, runCommand, type CommandRun } from "./measure.js";

/** The builders compared, in the order the report shows them. */
export type BuilderId = "kiln" | "buildkit" | "buildah";

/** A base image every builder gets from the same root filesystem tar, each in its own way. */
export interface BaseImage {
  readonly tar: string;
  /** The name the workloads' Dockerfiles use in FROM (a short Docker Hub style name). */
  readonly ref: string;
}

/** Where a build's image goes. `store` is each builder's own local image store. */
export type BuildOutput =
  | { readonly kind: "store" }
  | { readonly kind: "oci-tar"; readonly dest: string }
  | { readonly kind: "push"; readonly ref: string };

export interface BuildJob {
  readonly dockerfile: string;
  readonly context: string;
  /** The tag in the builder's local store (`bench/<workload>:latest`). */
  readonly tag: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly output: BuildOutput;
  readonly timeoutMs: number;
}

/** What one timed build came to. Unsupported means the builder said it cannot do this yet. */
export type Outcome =
  | { readonly kind: "ok"; readonly wallMs: number; readonly peakRssKiB: number | undefined }
  | { readonly kind: "unsupported"; readonly reason: string }
  | { readonly kind: "failed"; readonly reason: string };

/**
 * One builder under test. `reset` (never timed) leaves it with an empty build cache and exactly
 * the given bases in its image store; `build` runs one timed build, including the export or push
 * its output asks for.
 */
export interface Builder {
  readonly id: BuilderId;
  readonly name: string;
  version(): Promise<string>;
  reset(bases: readonly BaseImage[]): Promise<void>;
  build(job: BuildJob): Promise<Outcome>;
}

/** Sums the wall time of commands run one after the other; the first failure ends the sequence. */
async function timedSequence(steps: readonly (() => Promise<CommandRun>)[], unsupported: (run: CommandRun) => string | undefined): Promise<Outcome> {
  let wallMs = 0;
  let peakRssKiB: number | undefined;
  for (const step of steps) {
    const run = await step();
    if (run.timedOut) return { kind: "failed", reason: `timed out after ${(run.wallMs / 1000).toFixed(0)} s` };
    if (run.code !== 0) {
      const reason = unsupported(run);
      return reason === undefined ? { kind: "failed", reason: errorSummary(run) } : { kind: "unsupported", reason };
    }
    wallMs += run.wallMs;
    if (run.peakRssKiB !== undefined) peakRssKiB = Math.max(peakRssKiB ?? 0, run.peakRssKiB);
  }
  return { kind: "ok", wallMs, peakRssKiB };
}

/** The line that says what went wrong (`error: …`, `Error: …`), else the last lines of output. */
function errorSummary(run: CommandRun): string {
  const text = `${run.stderr}\n${run.stdout}`;
  const line = text.split("\n").find((l) => /^\s*(?:error|Error|ERROR)\b/.test(l));
  return line?.trim() ?? lastLines(text, 3);
}

function buildArgFlags(args: Readonly<Record<string, string>>): string[] {
  return Object.entries(args).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
}

/**
 * kiln through its executable (`repo` holds bin/kiln and dist/: the harness passes a snapshot of
 * them, so a rebuild of dist/ during a run cannot change what is measured), a fresh `--root` per
 * reset, bases stored with `kiln import`.
 */
export function kilnBuilder(repo: string, state: string): Builder {
  const root = join(state, "kiln-root");
  const kiln = (args: readonly string[], timeoutMs?: number): Promise<CommandRun> =>
    runCommand(process.execPath, [join(repo, "bin", "kiln"), "--root", root, ...args], { peakMemory: true, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  return {
    id: "kiln",
    name: "kiln",
    version: async () => (await mustRun(process.execPath, [join(repo, "bin", "kiln"), "--version"])).trim(),
    async reset(bases) {
      rmSync(root, { recursive: true, force: true });
      for (const base of bases) await mustRun(process.execPath, [join(repo, "bin", "kiln"), "--root", root, "import", base.tar, base.ref]);
    },
    build(job) {
      const output =
        job.output.kind === "store" ? ["-t", job.tag]
        : job.output.kind === "oci-tar" ? ["--output", `type=oci,dest=${job.output.dest}`]
        : ["--output", `type=image,name=${job.output.ref},push=true`];
      const args = ["build", "--progress", "plain", "-f", job.dockerfile, ...buildArgFlags(job.buildArgs), ...output, job.context];
      return timedSequence([() => kiln(args, job.timeoutMs)], (run) => {
        const text = run.stderr + run.stdout;
        if (!/not (?:implemented|supported)|unsupported|unknown (?:flag|instruction)|KILN_UNSUPPORTED|Cannot use output/i.test(text)) return undefined;
        return errorSummary(run).replace(/^error:\s*/, "");
      });
    },
  };
}

/** BuildKit as docker.io embeds it, through the private dockerd's socket with DOCKER_BUILDKIT=1. */
export function buildkitBuilder(socket: string): Builder {
  const env = { DOCKER_BUILDKIT: "1" };
  const docker = (args: readonly string[], timeoutMs?: number): Promise<CommandRun> =>
    runCommand("/usr/bin/docker", ["-H", `unix://${socket}`, ...args], { env, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  return {
    id: "buildkit",
    name: "BuildKit (docker.io)",
    version: async () => `docker ${(await mustRun("/usr/bin/docker", ["-H", `unix://${socket}`, "version", "-f", "{{.Server.Version}}"])).trim()}`,
    async reset(bases) {
      const images = (await mustRun("/usr/bin/docker", ["-H", `unix://${socket}`, "images", "-q", "--filter", "reference=bench/*"])).split("\n").filter((l) => l !== "");
      if (images.length > 0) await mustRun("/usr/bin/docker", ["-H", `unix://${socket}`, "rmi", "-f", ...new Set(images)]);
      await mustRun("/usr/bin/docker", ["-H", `unix://${socket}`, "builder", "prune", "-af"], { env });
      for (const base of bases) await mustRun("/usr/bin/docker", ["-H", `unix://${socket}`, "image", "inspect", base.ref]);
    },
    build(job) {
      const tag = job.output.kind === "push" ? job.output.ref : job.tag;
      const build = ["build", "--progress", "plain", "--network", "host", "-f", job.dockerfile, ...buildArgFlags(job.buildArgs), "-t", tag, job.context];
      const steps = [() => docker(build, job.timeoutMs)];
      // docker.io's embedded BuildKit has no OCI exporter: the image goes to docker's store and
      // `docker save` writes it out (a docker archive, which also holds an OCI layout).
      if (job.output.kind === "oci-tar") steps.push(((dest: string) => () => docker(["save", "-o", dest, tag], job.timeoutMs))(job.output.dest));
      if (job.output.kind === "push") steps.push(() => docker(["push", "-q", tag], job.timeoutMs));
      return timedSequence(steps, () => undefined);
    },
  };
}

/** buildah from Debian with `--layers`, its own storage root, bases made with from scratch + add + commit. */
export function buildahBuilder(state: string): Builder {
  const root = join(state, "buildah", "root");
  const runroot = join(state, "buildah", "runroot");
  const store = ["--root", root, "--runroot", runroot, "--storage-driver", "overlay"];
  const buildah = (args: readonly string[], timeoutMs?: number): Promise<CommandRun> =>
    runCommand("buildah", [...store, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  return {
    id: "buildah",
    name: "buildah",
    version: async () => (await mustRun("buildah", ["--version"])).trim().replace(/\s*\(.*$/, ""),
    async reset(bases) {
      // Working containers hold overlay mounts; images need no removal since the whole storage goes.
      if (existsSync(root)) await runCommand("buildah", [...store, "rm", "--all"]);
      rmSync(join(state, "buildah"), { recursive: true, force: true });
      mkdirSync(root, { recursive: true });
      for (const base of bases) {
        const container = (await mustRun("buildah", [...store, "from", "scratch"])).trim();
        await mustRun("buildah", [...store, "add", container, base.tar, "/"]);
        await mustRun("buildah", [...store, "commit", "--rm", "-q", container, `docker.io/library/${base.ref}`]);
      }
    },
    build(job) {
      const tag = job.output.kind === "push" ? job.output.ref : job.tag;
      const bud = ["bud", "--layers", "--pull-never", "--network", "host", "-f", job.dockerfile, ...buildArgFlags(job.buildArgs), "-t", tag, job.context];
      const steps = [() => buildah(bud, job.timeoutMs)];
      if (job.output.kind === "oci-tar") steps.push(((dest: string) => () => buildah(["push", "-q", tag, `oci-archive:${dest}`], job.timeoutMs))(job.output.dest));
      if (job.output.kind === "push") steps.push(() => buildah(["push", "-q", "--tls-verify=false", tag, `docker://${tag}`], job.timeoutMs));
      return timedSequence(steps, () => undefined);
    },
  };
}
