import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildahBuilder, buildkitBuilder, kilnBuilder, type BaseImage, type Builder, type BuilderId, type BuildJob, type BuildOutput } from "./builders.js";
import { renderChart } from "./chart.js";
import { describeMachine } from "./machine.js";
import { mustRun, runCommand } from "./measure.js";
import { measureDaemonMemory, type DaemonMemory } from "./daemon-memory.js";
import { parseAndLowerTimes } from "./parse-time.js";
import { applyLayerRates, trivialRunTimes } from "./worker-times.js";
import { measureGzipThroughput, type GzipThroughput } from "./gzip-throughput.js";
import { renderResults } from "./report.js";
import type { BenchResults, CellResult, RowResult } from "./results.js";
import { startAptProxy, startDockerd, startRegistry, type Service } from "./services.js";
import { QUICK_TITLES, WORKLOADS, type BaseName, type ScenarioKind, type Workload } from "./workloads.js";

/**
 * `node bench/.state/build/run.js [--quick] [--reps N] [--only a,b] [--builders kiln,buildkit,buildah] | --render`
 * (`--only` also takes the in-process rows `daemon-memory`, `gzip` and `worker`)
 * (bench/run.sh compiles and calls it). Runs every workload's scenarios on every builder, the
 * builders alternating within each repetition (rotated, so none always goes first), and writes
 * bench/RESULTS.md, bench/results.svg and bench/.state/results.json.
 */

const BENCH = resolve(import.meta.dirname, "..", "..");
const REPO = resolve(BENCH, "..");
const STATE = join(BENCH, ".state");

interface Options {
  readonly quick: boolean;
  readonly reps: number;
  readonly only: readonly string[] | undefined;
  readonly builders: readonly BuilderId[];
}

function parseOptions(argv: readonly string[]): Options {
  const quick = argv.includes("--quick");
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const reps = Number(value("--reps") ?? (quick ? 1 : 5));
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`Cannot use --reps "${value("--reps")}": it must be a whole number of at least 1`);
  const builders = (value("--builders") ?? "kiln,buildkit,buildah").split(",") as BuilderId[];
  return { quick, reps, only: value("--only")?.split(","), builders };
}

function log(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

/** Per workload: the builders whose cache holds its build. */
type Warmth = Set<BuilderId>;

/**
 * Runs one row. `warm` holds the builders whose cache already holds this workload's build (a
 * previous row of the same workload left it so); rows that need a warm cache build once, untimed,
 * for the others, and every successful build leaves its builder warm for the next row.
 */
async function runRow(workload: Workload, scenario: ScenarioKind, builders: readonly Builder[], context: string, options: Options, extra: { aptUrl?: string }, warm: Warmth): Promise<RowResult> {
  const dockerfile = existsSync(join(BENCH, "workloads", workload.id, "Dockerfile")) ? join(BENCH, "workloads", workload.id, "Dockerfile") : join(context, "Dockerfile");
  const bases: BaseImage[] = workload.bases.map((b: BaseName) => (b === "busybox" ? { tar: join(STATE, "bases", "busybox.tar"), ref: "busybox:latest" } : { tar: join(STATE, "bases", "debian.tar"), ref: "bench-debian:bookworm" }));
  const buildArgs = {
    ...(options.quick ? workload.quickBuildArgs : {}),
    ...(workload.needsApt === true && extra.aptUrl !== undefined ? { APT_URL: extra.aptUrl } : {}),
  };
  const timeoutMs = options.quick ? 240_000 : 900_000;
  const job = (output: BuildOutput): BuildJob => ({ dockerfile, context, tag: `bench/${workload.id}:latest`, buildArgs, output, timeoutMs });
  const cells = new Map<BuilderId, { samples: number[]; rss: number[]; note?: CellResult["note"] }>(builders.map((b) => [b.id, { samples: [], rss: [] }]));
  for (let rep = 0; rep < options.reps; rep++) {
    const order = builders.map((_, i) => builders[(i + rep) % builders.length]!);
    for (const builder of order) {
      const cell = cells.get(builder.id)!;
      if (cell.note !== undefined) continue;
      let registry: Service | undefined;
      try {
        if (scenario === "cold" || scenario === "push") {
          warm.delete(builder.id);
          await builder.reset(bases);
        }
        else if (!warm.has(builder.id)) {
          await builder.reset(bases);
          const warmup = await builder.build(job({ kind: "store" }));
          if (warmup.kind !== "ok") {
            cell.note = { kind: warmup.kind, reason: warmup.reason };
            continue;
          }
          warm.add(builder.id);
        }
        if (scenario === "changed" && workload.mutates !== undefined) writeFileSync(join(context, workload.mutates), `changed before run ${rep} of ${builder.id}\n`);
        let output: BuildOutput = { kind: "store" };
        if (scenario === "export-oci") output = { kind: "oci-tar", dest: join(STATE, "out", `${builder.id}.tar`) };
        if (scenario === "push") {
          registry = await startRegistry(join(STATE, "registry"));
          output = { kind: "push", ref: `${registry.address}/bench/${workload.id}:latest` };
        }
        mkdirSync(join(STATE, "out"), { recursive: true });
        const outcome = await builder.build(job(output));
        if (outcome.kind === "ok") {
          warm.add(builder.id);
          cell.samples.push(outcome.wallMs);
          if (outcome.peakRssKiB !== undefined && builder.id === "kiln") cell.rss.push(outcome.peakRssKiB);
          log(`${workload.id}/${scenario} ${builder.id}: ${(outcome.wallMs / 1000).toFixed(2)} s`);
        } else {
          cell.note = { kind: outcome.kind, reason: outcome.reason };
          log(`${workload.id}/${scenario} ${builder.id}: ${outcome.kind}: ${outcome.reason}`);
        }
      } catch (error) {
        cell.note = { kind: "failed", reason: `harness: ${error instanceof Error ? error.message : String(error)}`.slice(0, 300) };
        log(`${workload.id}/${scenario} ${builder.id}: ${cell.note.reason}`);
      } finally {
        await registry?.stop();
        rmSync(join(STATE, "out"), { recursive: true, force: true });
      }
    }
  }
  const title = options.quick ? (QUICK_TITLES[workload.id] ?? workload.title) : workload.title;
  return {
    workload: workload.id,
    title,
    scenario,
    cells: Object.fromEntries(builders.map((b) => {
      const c = cells.get(b.id)!;
      return [b.id, { samples: c.samples, peakRssKiB: c.rss, ...(c.note === undefined ? {} : { note: c.note }) }];
    })) as Partial<Record<BuilderId, CellResult>>,
  };
}

/**
 * Copies bin/, dist/ and package.json to bench/.state/kiln (node_modules still resolves from the
 * repository above it), so that other work rebuilding dist/ cannot change kiln mid-run; returns
 * that directory and which commit it was built from.
 */
async function snapshotKiln(): Promise<{ dir: string; revision: string }> {
  const dir = join(STATE, "kiln");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of ["bin", "dist", "package.json"]) cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  const head = (await mustRun("git", ["-C", REPO, "rev-parse", "--short", "HEAD"])).trim();
  const dirty = (await mustRun("git", ["-C", REPO, "status", "--porcelain", "--", "cli", "frontend", "solver", "worker", "exporter"])).trim();
  return { dir, revision: dirty === "" ? `commit ${head}` : `commit ${head} plus uncommitted work in progress (${dirty.split("\n").length} changed files)` };
}

/** Writes RESULTS.md and results.svg from results (also `--render`: again from bench/.state/results.json, measuring nothing). */
function writeReport(results: BenchResults): void {
  writeFileSync(join(BENCH, "RESULTS.md"), renderResults(results));
  writeFileSync(join(BENCH, "results.svg"), renderChart(results));
}

async function main(): Promise<void> {
  if (process.argv.includes("--render")) {
    writeReport(JSON.parse(readFileSync(join(STATE, "results.json"), "utf8")) as BenchResults);
    return;
  }
  const options = parseOptions(process.argv.slice(2));
  const scale = options.quick ? "quick" : "full";
  const machine = describeMachine();
  const started = Date.now();
  const services: Service[] = [];
  try {
    const dockerd = await startDockerd(BENCH, STATE);
    services.push(dockerd);
    const kiln = await snapshotKiln();
    const all: Builder[] = [kilnBuilder(kiln.dir, STATE), buildkitBuilder(dockerd.address), buildahBuilder(STATE)];
    const builders = all.filter((b) => options.builders.includes(b.id));
    const versions = Object.fromEntries(await Promise.all(builders.map(async (b) => [b.id, await b.version()] as const)));
    const workloads = WORKLOADS.filter((w) => options.only === undefined || options.only.includes(w.id));
    let aptUrl: string | undefined;
    if (workloads.some((w) => w.needsApt === true)) {
      const proxy = await startAptProxy(STATE);
      services.push(proxy);
      aptUrl = proxy.address;
    }

    const reference = { nodeStartMs: [] as number[], kilnVersionMs: [] as number[], parseLowerMs: [] as number[], parseOnlyMs: [] as number[], parseLowerNote: undefined as string | undefined, daemonMemory: undefined as DaemonMemory | undefined };
    for (let i = 0; i < 5; i++) {
      reference.nodeStartMs.push((await runCommand(process.execPath, ["-e", "0"])).wallMs);
      reference.kilnVersionMs.push((await runCommand(process.execPath, [join(kiln.dir, "bin", "kiln"), "--version"])).wallMs);
    }

    const rows: RowResult[] = [];
    for (const workload of workloads) {
      const context = join(STATE, "contexts", `${workload.id}-${scale}`);
      log(`generating the context of ${workload.id} (${scale})`);
      await mustRun("bash", [join(BENCH, "workloads", workload.id, "context.sh"), context, scale]);
      if (workload.id === "parse") {
        try {
          // Always the full 2,000 instructions: the in-process measurement is cheap.
          const full = join(STATE, "contexts", "parse-lower-full");
          await mustRun("bash", [join(BENCH, "workloads", "parse", "context.sh"), full, "full"]);
          const times = await parseAndLowerTimes(kiln.dir, join(full, "Dockerfile"), 10);
          reference.parseLowerMs = times.totalMs;
          reference.parseOnlyMs = times.parseMs;
        } catch (error) {
          reference.parseLowerNote = error instanceof Error ? error.message : String(error);
        }
      }
      const warm: Warmth = new Set();
      for (const scenario of workload.scenarios) {
        if (options.quick && workload.fullOnly?.includes(scenario) === true) continue;
        const listed = workload.builders === undefined ? builders : builders.filter((b) => workload.builders?.includes(b.id) === true);
        const skipped = options.quick ? {} : (workload.skipInFull ?? {});
        const rowBuilders = listed.filter((b) => skipped[b.id] === undefined);
        log(`${workload.id}/${scenario}: ${options.reps} repetition(s) on ${rowBuilders.map((b) => b.id).join(", ")}`);
        const measured = await runRow(workload, scenario, rowBuilders, context, options, aptUrl === undefined ? {} : { aptUrl }, warm);
        const notRun = listed.flatMap((b) => {
          const reason = skipped[b.id];
          return reason === undefined ? [] : [[b.id, { samples: [], peakRssKiB: [], note: { kind: "skipped", reason } }] as const];
        });
        rows.push({ ...measured, cells: { ...measured.cells, ...Object.fromEntries(notRun) } });
      }
    }

    if (options.only === undefined || options.only.includes("daemon-memory")) {
      const context = join(STATE, "contexts", "many-steps-daemon");
      await mustRun("bash", [join(BENCH, "workloads", "many-steps", "context.sh"), context, scale]);
      const last = options.quick ? 30 : 100;
      log(`daemon-memory: kiln serve, 10 and ${last} builds of many-steps`);
      reference.daemonMemory = await measureDaemonMemory(kiln.dir, STATE, {
        dockerfile: join(BENCH, "workloads", "many-steps", "Dockerfile"),
        context,
        busyboxTar: join(STATE, "bases", "busybox.tar"),
      }, 10, last).catch((error: unknown): DaemonMemory => ({ kind: "failed", reason: `harness: ${error instanceof Error ? error.message : String(error)}` }));
      log(`daemon-memory: ${JSON.stringify(reference.daemonMemory)}`);
    }

    let gzipThroughput: GzipThroughput | undefined;
    if (options.only === undefined || options.only.includes("gzip")) {
      // Quick mode keeps this short: gzip -6 runs at ~4 MiB/s on this kind of machine.
      const size = (options.quick ? 16 : 100) * 1024 * 1024;
      const runs = options.quick ? 2 : 3;
      log(`gzip: kiln's parallel gzip and gzip -6 over ${size >> 20} MiB of mixed data, ${runs} runs each`);
      gzipThroughput = await measureGzipThroughput(kiln.dir, STATE, size, runs);
      log(`gzip: ${JSON.stringify(gzipThroughput, (key, value: unknown) => (key === "kiln" || key === "gzip" ? undefined : value))}`);
    }

    let workerTimes: NonNullable<BenchResults["reference"]["workerTimes"]> | undefined;
    if (options.only === undefined || options.only.includes("worker")) {
      const [runs, applies] = options.quick ? [20, 3] : [30, 5];
      log(`worker: ${runs} trivial RUNs and ${applies} applies of a 20,000-file layer, in process`);
      workerTimes = await (async () => ({ trivialRunMs: await trivialRunTimes(kiln.dir, runs), applyLayerMBps: (await applyLayerRates(kiln.dir, applies)).mbPerSecond }))()
        .catch((error: unknown) => ({ failed: error instanceof Error ? error.message : String(error) }));
    }

    const { daemonMemory, ...measured } = reference;
    const results: BenchResults = {
      date: new Date(started).toISOString(),
      durationS: Math.round((Date.now() - started) / 1000),
      mode: options.quick ? "quick" : "full",
      reps: options.reps,
      machine,
      versions: { ...versions, kiln: `${versions["kiln"] ?? "kiln"} at ${kiln.revision}` },
      reference: { ...measured, ...(daemonMemory === undefined ? {} : { daemonMemory }), ...(gzipThroughput === undefined ? {} : { gzipThroughput }), ...(workerTimes === undefined ? {} : { workerTimes }) },
      rows,
    };
    writeFileSync(join(STATE, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeReport(results);
    log(`wrote bench/RESULTS.md and bench/results.svg in ${results.durationS} s`);
  } finally {
    for (const service of services.reverse()) await service.stop().catch((error: unknown) => log(`cannot stop a service: ${String(error)}`));
  }
}

await main();
