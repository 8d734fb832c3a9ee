/**
 * The workloads (folders under bench/workloads, each a Dockerfile, or a Dockerfile its context
 * script writes, and a deterministic `context.sh OUT quick|full`) and the scenarios measured on each.
 *
 * - `cold`: the builder's cache emptied before every timed run (bases stay).
 * - `cached`: the same build again with everything cached.
 * - `changed`: one small context file changed before every timed run, cache otherwise warm.
 * - `export-oci`: cached build, image written as an OCI tarball (docker: `docker save`).
 * - `push`: cold build and push to a fresh loopback registry, timed together (issue 6's measure).
 */
import type { BuilderId } from "./builders.js";

export type ScenarioKind = "cold" | "cached" | "changed" | "export-oci" | "push";

export type BaseName = "busybox" | "debian";

export interface Workload {
  /** The folder under bench/workloads. */
  readonly id: string;
  readonly title: string;
  readonly bases: readonly BaseName[];
  readonly scenarios: readonly ScenarioKind[];
  /** Scenarios left out of --quick. */
  readonly fullOnly?: readonly ScenarioKind[];
  /** The context file `changed` rewrites (relative to the context). */
  readonly mutates?: string;
  /** Build args that shrink the work in --quick mode. */
  readonly quickBuildArgs?: Readonly<Record<string, string>>;
  /** Needs the loopback apt forwarder's URL as APT_URL. */
  readonly needsApt?: boolean;
  /** Only these builders run it (a yardstick row); default every builder. */
  readonly builders?: readonly BuilderId[];
  /** Builders left out of full runs, with why: their cell says "not run (why)". */
  readonly skipInFull?: Partial<Record<BuilderId, string>>;
}

export const WORKLOADS: readonly Workload[] = [
  { id: "one-sleep", title: "1 stage, sleep 3 s (yardstick)", bases: ["busybox"], scenarios: ["cold"], builders: ["kiln", "buildkit"] },
  { id: "parallel-sleep", title: "3 parallel stages, sleep 3 s each", bases: ["busybox"], scenarios: ["cold"] },
  { id: "parallel-cpu", title: "3 parallel stages, ~3 s CPU each", bases: ["busybox"], scenarios: ["cold"], quickBuildArgs: { MB: "80" } },
  { id: "many-steps", title: "40 small steps", bases: ["busybox"], scenarios: ["cold", "cached"] },
  {
    id: "big-context",
    title: "20,000 small files + 250 MiB context",
    bases: ["busybox"],
    scenarios: ["cold", "cached", "changed"],
    mutates: "small/d0/f00007.txt",
  },
  { id: "apt-install", title: "apt-get install on debootstrap base", bases: ["debian"], scenarios: ["cold"], needsApt: true },
  { id: "export-push", title: "300 MiB incompressible layer", bases: ["busybox"], scenarios: ["export-oci", "push"] },
  {
    id: "parse",
    title: "2,000-instruction Dockerfile",
    bases: ["busybox"],
    scenarios: ["cold", "cached"],
    // Measured on this machine kind (the full run of 2026-11-22): buildah --layers commits each of
    // the 2,000 instructions and one cold build did not finish in 900 s; the cached row's warm-up
    // build took as long again. --quick still runs it on the 100-instruction version.
    skipInFull: { buildah: "one build took over 900 s here: buildah --layers commits every one of the 2,000 instructions" },
  },
];

/** How `--quick` shrinks a workload's title (the context scripts shrink the data the same way). */
export const QUICK_TITLES: Readonly<Record<string, string>> = {
  "parallel-cpu": "3 parallel stages, ~1 s CPU each (quick)",
  "big-context": "2,000 small files + 25 MiB context (quick)",
  "export-push": "30 MiB incompressible layer (quick)",
  parse: "100-instruction Dockerfile (quick)",
};
