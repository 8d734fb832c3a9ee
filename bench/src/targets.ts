import { medianOf, ratio, type BenchResults, type RowResult } from "./results.js";
import { formatSeconds, summarize } from "./stats.js";
import type { ScenarioKind } from "./workloads.js";

/** One performance target from issues 3–7 and what this run says about it. */
export interface TargetCheck {
  readonly issue: string;
  readonly target: string;
  readonly status: "met" | "not met" | "not measured";
  readonly detail: string;
}

function row(results: BenchResults, workload: string, scenario: ScenarioKind): RowResult | undefined {
  return results.rows.find((r) => r.workload === workload && r.scenario === scenario);
}

/** Why a row has no kiln/BuildKit ratio: a cell's note, or that the row was not run. */
function missing(r: RowResult | undefined): string {
  if (r === undefined) return "row not run";
  const notes = (["kiln", "buildkit"] as const).flatMap((id) => {
    const note = r.cells[id]?.note;
    return note === undefined ? [] : [`${id}: ${note.kind === "unsupported" ? "not supported yet" : note.kind === "skipped" ? "not run" : "failed"} (${note.reason})`];
  });
  return notes.join("; ") || "no samples";
}

function ratioTarget(results: BenchResults, issue: string, target: string, workload: string, scenario: ScenarioKind, limit: number): TargetCheck {
  const r = row(results, workload, scenario);
  const value = r === undefined ? undefined : ratio(r, "buildkit");
  if (value === undefined) return { issue, target, status: "not measured", detail: missing(r) };
  const scale = results.mode === "quick" && ["big-context", "export-push", "parallel-cpu"].includes(workload) ? " (quick: smaller work)" : "";
  return { issue, target, status: value <= limit ? "met" : "not met", detail: `kiln/BuildKit ${value.toFixed(2)}×${scale}` };
}

const NOT_MEASURED = "kiln-internal timing; this harness drives kiln as a black box";

/** The targets stated in issues 3–7, each checked against this run where the harness can measure it. */
export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const parse = summarize(results.reference.parseLowerMs);
  checks.push(
    parse === undefined
      ? { issue: "3", target: "parse + lower a 2,000-instruction Dockerfile in under 50 ms", status: "not measured", detail: results.reference.parseLowerNote ?? "parse workload not run" }
      : {
        issue: "3",
        target: "parse + lower a 2,000-instruction Dockerfile in under 50 ms",
        status: parse.median < 50 ? "met" : "not met",
        detail: `${parse.median.toFixed(1)} ms median in-process through kiln/frontend (${parse.min.toFixed(1)}–${parse.max.toFixed(1)}), of which parsing ${summarize(results.reference.parseOnlyMs)?.median.toFixed(1) ?? "?"} ms and lowering the rest`,
      },
    ...workerTargets(results),
    ratioTarget(results, "5", "rebuild after one changed file of the 20,000-file context: at most 0.5× BuildKit", "big-context", "changed", 0.5),
    ratioTarget(results, "5", "fully cached rebuild of the 20,000-file context: at most 0.5× BuildKit", "big-context", "cached", 0.5),
    ratioTarget(results, "5", "fully cached 40-step rebuild no slower than BuildKit (Node start-up included)", "many-steps", "cached", 1),
  );
  const cached40 = row(results, "many-steps", "cached");
  const kiln40 = cached40 === undefined ? undefined : medianOf(cached40, "kiln");
  const bk40 = cached40 === undefined ? undefined : medianOf(cached40, "buildkit");
  // Node's start-up is a floor, not a distribution: its fastest sample is the cost every kiln run
  // pays, while slow samples are the shared machine's noise (a median above kiln's whole build
  // has been seen).
  const node = summarize(results.reference.nodeStartMs)?.min;
  checks.push(
    kiln40 === undefined || bk40 === undefined || node === undefined
      ? { issue: "5", target: "kiln's own part of the cached 40-step rebuild (minus `node -e 0`): at most 0.5× BuildKit", status: "not measured", detail: missing(cached40) }
      : kiln40 <= node
      ? { issue: "5", target: "kiln's own part of the cached 40-step rebuild (minus `node -e 0`): at most 0.5× BuildKit", status: "not measured", detail: `noise: \`node -e 0\` (${formatSeconds(node)} at best) took as long as the whole build (${formatSeconds(kiln40)})` }
      : {
        issue: "5",
        target: "kiln's own part of the cached 40-step rebuild (minus `node -e 0`): at most 0.5× BuildKit",
        status: (kiln40 - node) / bk40 <= 0.5 ? "met" : "not met",
        detail: `(${formatSeconds(kiln40)} − ${formatSeconds(node)}, the fastest \`node -e 0\`) / ${formatSeconds(bk40)} = ${((kiln40 - node) / bk40).toFixed(2)}×`,
      },
  );
  const sleep = row(results, "parallel-sleep", "cold");
  const one = row(results, "one-sleep", "cold");
  const kilnSleep = sleep === undefined ? undefined : medianOf(sleep, "kiln");
  const kilnOne = one === undefined ? undefined : medianOf(one, "kiln");
  const sleepTarget = "three parallel sleep-3 stages within 1.05× one such stage";
  checks.push(
    kilnSleep === undefined || kilnOne === undefined
      ? { issue: "5", target: sleepTarget, status: "not measured", detail: missing(kilnSleep === undefined ? sleep : one) }
      : {
        issue: "5",
        target: sleepTarget,
        status: kilnSleep <= 1.05 * kilnOne ? "met" : "not met",
        detail: `kiln: three stages ${formatSeconds(kilnSleep)}, one stage ${formatSeconds(kilnOne)} (the one-sleep row): ${(kilnSleep / kilnOne).toFixed(2)}×; against 3 s of sleep alone ${(kilnSleep / 3000).toFixed(2)}×`,
      },
    ratioTarget(results, "5", "three CPU-bound 3 s stages on 2 cores: at most 0.8× BuildKit", "parallel-cpu", "cold", 0.8),
    ratioTarget(results, "5", "cold 40-step Dockerfile: at most 0.8× BuildKit", "many-steps", "cold", 0.8),
  );
  const push = row(results, "export-push", "push");
  const kilnPush = push === undefined ? undefined : medianOf(push, "kiln");
  const peers = push === undefined ? [] : (["buildkit", "buildah"] as const).map((id) => medianOf(push, id)).filter((v): v is number => v !== undefined);
  checks.push(
    kilnPush === undefined || peers.length === 0
      ? { issue: "6", target: "build + push of a 300 MiB incompressible layer faster than the fastest peer", status: "not measured", detail: missing(push) }
      : {
        issue: "6",
        target: "build + push of a 300 MiB incompressible layer faster than the fastest peer",
        status: kilnPush < Math.min(...peers) ? "met" : "not met",
        detail: `kiln ${formatSeconds(kilnPush)}, fastest peer ${formatSeconds(Math.min(...peers))}${results.mode === "quick" ? " (quick: 30 MiB)" : ""}`,
      },
    gzipTarget(results),
    { issue: "6", target: "a push whose layers are all in the registry uploads no layer bytes", status: "not measured", detail: "a behaviour, not a time: for an exporter test, not this harness" },
    daemonTarget(results),
  );
  return checks;
}

function gzipTarget(results: BenchResults): TargetCheck {
  const target = "parallel gzip at 1.5× the throughput of a single `gzip -6`";
  const m = results.reference.gzipThroughput;
  if (m === undefined) return { issue: "6", target, status: "not measured", detail: "gzip not run" };
  if (m.kind !== "ok") return { issue: "6", target, status: "not measured", detail: `harness: ${m.reason}` };
  const kiln = summarize(m.kiln.map((s) => s.wallMs));
  const gzip = summarize(m.gzip.map((s) => s.wallMs));
  const kilnCpu = summarize(m.kiln.map((s) => s.cpuMs));
  const gzipCpu = summarize(m.gzip.map((s) => s.cpuMs));
  if (kiln === undefined || gzip === undefined || kilnCpu === undefined || gzipCpu === undefined) return { issue: "6", target, status: "not measured", detail: "no samples" };
  const value = gzip.median / kiln.median;
  const mib = m.inputBytes / (1 << 20);
  const size = (s: number): string => `${((s / m.inputBytes) * 100).toFixed(1)}%`;
  return {
    issue: "6",
    target,
    status: value >= 1.5 ? "met" : "not met",
    detail: `${value.toFixed(2)}× over ${mib.toFixed(0)} MiB of mixed data: kiln ${(mib / (kiln.median / 1000)).toFixed(1)} MiB/s (${(kilnCpu.median / kiln.median).toFixed(2)} cores busy, output ${size(m.kiln[0]?.outBytes ?? 0)}), gzip -6 ${(mib / (gzip.median / 1000)).toFixed(1)} MiB/s (output ${size(m.gzip[0]?.outBytes ?? 0)}); CPU time kiln/gzip ${(kilnCpu.median / gzipCpu.median).toFixed(2)}`,
  };
}

/** Issue 4's two worker targets, from the in-process measurements of src/worker-times.ts. */
function workerTargets(results: BenchResults): TargetCheck[] {
  const runTarget = "trivial RUN overhead (prepare, mount, runc, commit, diff) median under 40 ms";
  const applyTarget = "apply an uncompressed 20,000-file layer at 200 MB/s or better";
  const w = results.reference.workerTimes;
  if (w === undefined || "failed" in w) {
    const detail = w === undefined ? "worker measurements not run" : `failed (${w.failed})`;
    return [{ issue: "4", target: runTarget, status: "not measured", detail }, { issue: "4", target: applyTarget, status: "not measured", detail }];
  }
  const run = summarize(w.trivialRunMs);
  const apply = summarize(w.applyLayerMBps);
  return [
    run === undefined
      ? { issue: "4", target: runTarget, status: "not measured", detail: "no samples" }
      : { issue: "4", target: runTarget, status: run.median < 40 ? "met" : "not met", detail: `${run.median.toFixed(1)} ms median of ${w.trivialRunMs.length} in-process runs (${run.min.toFixed(1)}–${run.max.toFixed(1)})` },
    apply === undefined
      ? { issue: "4", target: applyTarget, status: "not measured", detail: "no samples" }
      : { issue: "4", target: applyTarget, status: apply.median >= 200 ? "met" : "not met", detail: `${apply.median.toFixed(0)} MB/s median of ${w.applyLayerMBps.length} applies (${apply.min.toFixed(0)}–${apply.max.toFixed(0)})` },
  ];
}

function daemonTarget(results: BenchResults): TargetCheck {
  const target = "`kiln serve` resident size after 100 builds within 20% of after 10";
  const m = results.reference.daemonMemory;
  if (m === undefined) return { issue: "7", target, status: "not measured", detail: "daemon-memory not run" };
  if (m.kind !== "ok") return { issue: "7", target, status: "not measured", detail: `kiln: ${m.kind === "unsupported" ? "not supported yet" : "failed"} (${m.reason})` };
  const [a, b] = m.rssKiB;
  const growth = b / a - 1;
  const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
  return {
    issue: "7",
    target,
    status: Math.abs(growth) <= 0.2 ? "met" : "not met",
    detail: `${mib(a)} after ${m.builds[0]} builds, ${mib(b)} after ${m.builds[1]} (${growth >= 0 ? "+" : ""}${(growth * 100).toFixed(0)}%)${m.builds[1] !== 100 ? " (quick: fewer builds)" : ""}`,
  };
}
