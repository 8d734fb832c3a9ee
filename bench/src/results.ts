import type { BuilderId } from "./builders.js";
import type { DaemonMemory } from "./daemon-memory.js";
import type { Machine } from "./machine.js";
import { summarize } from "./stats.js";
import type { ScenarioKind } from "./workloads.js";
import type { GzipThroughput } from "./gzip-throughput.js";

/** What a run measured: the shape of bench/.state/results.json, read by the report, the chart and the target checks. */

/** One builder on one row: wall-time samples (ms), kiln's peak RSS samples (KiB), or why there are none. */
export interface CellResult {
  readonly samples: readonly number[];
  readonly peakRssKiB: readonly number[];
  /** Why there are no samples: kiln cannot do it yet, the builder failed, or the harness left it out (`skipInFull`). */
  readonly note?: { readonly kind: "unsupported" | "failed" | "skipped"; readonly reason: string };
}

export interface RowResult {
  readonly workload: string;
  readonly title: string;
  readonly scenario: ScenarioKind;
  readonly cells: Partial<Record<BuilderId, CellResult>>;
}

export interface BenchResults {
  readonly date: string;
  readonly durationS: number;
  readonly mode: "quick" | "full";
  readonly reps: number;
  readonly machine: Machine;
  readonly versions: Readonly<Record<string, string>>;
  readonly reference: {
    readonly nodeStartMs: readonly number[];
    readonly kilnVersionMs: readonly number[];
    /** In-process parse + lower of the 2,000-instruction Dockerfile, and of that the parse alone. */
    readonly parseLowerMs: readonly number[];
    readonly parseOnlyMs: readonly number[];
    readonly parseLowerNote: string | undefined;
    /** `kiln serve`'s resident size after a few and after many client builds (issue 7). */
    readonly daemonMemory?: DaemonMemory;
    /** kiln's parallel gzip against one `gzip -6` over the same mixed data (issue 6). */
    readonly gzipThroughput?: GzipThroughput;
    /** Issue 4, in-process through dist/worker (src/worker-times.ts): ms per trivial RUN, and MB/s applying the 20,000-file layer. */
    readonly workerTimes?: { readonly trivialRunMs: readonly number[]; readonly applyLayerMBps: readonly number[] } | { readonly failed: string };
  };
  readonly rows: readonly RowResult[];
}

const SCENARIO_TEXT: Readonly<Record<ScenarioKind, string>> = {
  cold: "cold",
  cached: "fully cached",
  changed: "one small file changed",
  "export-oci": "export OCI tarball (cached build)",
  push: "build + push to loopback registry",
};

export function scenarioText(kind: ScenarioKind): string {
  return SCENARIO_TEXT[kind];
}

/** The median wall time of a builder on a row, when it has samples. */
export function medianOf(row: RowResult, id: BuilderId): number | undefined {
  return summarize(row.cells[id]?.samples ?? [])?.median;
}

/** kiln's median over another builder's, when both ran. */
export function ratio(row: RowResult, other: BuilderId): number | undefined {
  const kiln = medianOf(row, "kiln");
  const peer = medianOf(row, other);
  return kiln === undefined || peer === undefined || peer === 0 ? undefined : kiln / peer;
}
