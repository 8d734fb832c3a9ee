import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";

/**
 * In-process micro-benchmarks of issue 4's two worker targets, through kiln's built worker
 * (dist/worker): like parse-time.ts, they load kiln by URL and use it through small structural
 * views, so the harness compiles without kiln's declarations.
 *
 * - Trivial RUN overhead: one exec op (`/bin/true` on a busybox snapshot) through the worker's own
 *   exec runner: snapshot prepare, overlay mount, runc spec + `runc run`, unmount, commit; then
 *   the layer diff of the result (read to the end). Median of `runs` after one warm-up.
 * - Layer apply throughput: an uncompressed layer of 20,000 files (0–16 KiB, 8 KiB on average,
 *   in 200 directories; about 170 MB) built in memory and applied to an empty directory on the
 *   state root's filesystem. MB/s of tar bytes; median of `runs` after one warm-up.
 */

interface WorkerView {
  createWorker(options: { root: string; snapshotter?: "auto" | "overlay" | "native" }): Promise<{
    snapshotter: SnapshotterView;
    executor: ExecutorView;
    resolveOp(session: { localDirs: Record<string, string> }): (vertex: unknown) => {
      run(inputs: readonly { id: string }[], context: unknown): Promise<readonly { id: string }[]>;
    };
    close(): Promise<void>;
  }>;
}
interface ExecutorView {
  run(rootfs: string, process: { args: string[]; env: string[]; cwd: string; user: string; network: "host" }, mounts: readonly unknown[], options?: Record<string, unknown>): Promise<unknown>;
}
interface MountView {
  mountSnapshot(snapshot: unknown, target: string): void;
  unmountSnapshot(target: string): void;
}
interface SnapshotterView {
  prepare(parent: string | null): Promise<{ upperdir: string; mount: unknown }>;
  commit(active: unknown): Promise<string>;
  remove(id: string): Promise<void>;
  kind: "overlay" | "native";
}
interface ApplyView {
  applyLayer(tar: Readable, dir: string, options: { layerName: string; whiteouts: "overlay" | "native" }): Promise<{ size: number }>;
}
interface DiffView {
  diffSnapshot(snapshotter: unknown, id: string): Readable;
}
interface TarView {
  encodeTarHeader(entry: Record<string, unknown>): Buffer;
  padding(size: number): Buffer;
  endOfArchive(): Buffer;
}

async function load<T>(repo: string, path: string): Promise<T> {
  return (await import(pathToFileURL(join(repo, "dist", path)).href)) as T;
}

/** Milliseconds per trivial RUN (prepare → mount → runc → commit → diff), one sample per run. */
export async function trivialRunTimes(repo: string, runs: number): Promise<number[]> {
  const { createWorker } = await load<WorkerView>(repo, "worker/index.js");
  const { applyLayer } = await load<ApplyView>(repo, "worker/snapshotter/apply-layer.js");
  const { diffSnapshot } = await load<DiffView>(repo, "worker/differ/diff.js");
  const tar = await load<TarView>(repo, "worker/differ/tar-entry.js");
  const root = mkdtempSync(join(tmpdir(), "kiln-bench-run-"));
  const worker = await createWorker({ root });
  try {
    const base = await worker.snapshotter.prepare(null);
    await applyLayer(Readable.from([busyboxLayer(tar)]), base.upperdir, { layerName: "busybox", whiteouts: worker.snapshotter.kind });
    const baseId = await worker.snapshotter.commit(base);
    const digest = `sha256:${"0".repeat(64)}`;
    const vertex = {
      digest,
      inputs: [{ digest: `sha256:${"1".repeat(64)}`, output: 0 }],
      metadata: {},
      op: {
        kind: "exec",
        inputs: [{ digest: `sha256:${"1".repeat(64)}`, output: 0 }],
        meta: { args: ["/bin/true"], env: [], cwd: "/", user: "" },
        mounts: [{ type: "bind", target: "/", input: 0, selector: "", readonly: false, output: 0 }],
        network: "host",
        security: "sandbox",
      },
    };
    const runner = worker.resolveOp({ localDirs: {} })(vertex);
    const context = { signal: new AbortController().signal, progress: { log: () => {}, bytes: () => {} } };
    const once = async (): Promise<number> => {
      const started = process.hrtime.bigint();
      const [result] = await runner.run([{ id: baseId }], context);
      if (result === undefined) throw new Error("The exec runner returned no result");
      for await (const _ of diffSnapshot(worker.snapshotter, result.id));
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      await worker.snapshotter.remove(result.id);
      return ms;
    };
    await once();
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) samples.push(await once());
    return samples;
  } finally {
    await worker.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The phases of one trivial RUN as the exec runner goes through them, plus `runc run` alone. */
export const RUN_PHASES = ["prepare", "mount", "executor", "unmount", "commit", "diff", "remove", "runc alone"] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

export interface RunBreakdown {
  /** Median wall milliseconds per phase. */
  readonly wallMs: Record<RunPhase, number>;
  /** This process's CPU milliseconds per run (user + system), and its children's (runc), both means. */
  readonly cpuMs: { readonly kiln: number; readonly children: number };
  readonly runs: number;
}

/**
 * The trivial RUN taken apart: the same steps as the exec runner (snapshot prepare, mount of the
 * rootfs, the executor's spec + `runc run`, unmount, commit, then the layer diff read to the end
 * and the snapshot removed), each timed with process.hrtime; and, for comparison, `runc run` of a
 * hand-written minimal bundle (`runc spec`, /bin/true) on the same mounted rootfs: the floor no
 * kiln change can go under.
 */
export async function trivialRunBreakdown(repo: string, runs: number): Promise<RunBreakdown> {
  const { createWorker } = await load<WorkerView>(repo, "worker/index.js");
  const { applyLayer } = await load<ApplyView>(repo, "worker/snapshotter/apply-layer.js");
  const { diffSnapshot } = await load<DiffView>(repo, "worker/differ/diff.js");
  const { mountSnapshot, unmountSnapshot } = await load<MountView>(repo, "worker/snapshotter/mount.js");
  const tar = await load<TarView>(repo, "worker/differ/tar-entry.js");
  const root = mkdtempSync(join(tmpdir(), "kiln-bench-phases-"));
  const worker = await createWorker({ root });
  const samples = new Map<RunPhase, number[]>(RUN_PHASES.map((p) => [p, []]));
  let cpu = 0;
  let children = 0;
  try {
    const base = await worker.snapshotter.prepare(null);
    await applyLayer(Readable.from([busyboxLayer(tar)]), base.upperdir, { layerName: "busybox", whiteouts: worker.snapshotter.kind });
    const baseId = await worker.snapshotter.commit(base);
    const bundle = join(root, "bare-bundle");
    mkdirSync(bundle);
    const runcRoot = join(root, "bare-runc");
    const once = async (i: number, record: boolean): Promise<void> => {
      const times: [RunPhase, number][] = [];
      let mark = process.hrtime.bigint();
      const lap = (phase: RunPhase): void => {
        const now = process.hrtime.bigint();
        times.push([phase, Number(now - mark) / 1e6]);
        mark = now;
      };
      const cpu0 = process.cpuUsage();
      const child0 = childTicks();
      const active = await worker.snapshotter.prepare(baseId);
      lap("prepare");
      const rootfs = join(root, `rootfs-${i}`);
      mkdirSync(rootfs);
      mountSnapshot(active.mount, rootfs);
      lap("mount");
      try {
        await worker.executor.run(rootfs, { args: ["/bin/true"], env: [], cwd: "/", user: "", network: "host" }, []);
        lap("executor");
      } finally {
        unmountSnapshot(rootfs);
      }
      lap("unmount");
      const id = await worker.snapshotter.commit(active);
      lap("commit");
      for await (const _ of diffSnapshot(worker.snapshotter, id));
      lap("diff");
      await worker.snapshotter.remove(id);
      lap("remove");
      const cpuUsed = process.cpuUsage(cpu0);
      const childUsed = childTicks() - child0;
      // `runc run` alone, on a fresh mount of the same base, outside the timing of the phases above.
      const bare = await worker.snapshotter.prepare(baseId);
      mountSnapshot(bare.mount, rootfs);
      try {
        writeFileSync(join(bundle, "config.json"), JSON.stringify(bareSpec(rootfs)));
        const started = process.hrtime.bigint();
        const result = spawnSync("runc", ["--root", runcRoot, "run", "--bundle", bundle, `bench-bare-${process.pid}-${i}`], { stdio: "ignore" });
        times.push(["runc alone", Number(process.hrtime.bigint() - started) / 1e6]);
        if (result.status !== 0) throw new Error(`runc run of the bare bundle exited with ${String(result.status)}`);
      } finally {
        unmountSnapshot(rootfs);
        rmSync(rootfs, { recursive: true, force: true });
      }
      await worker.snapshotter.remove(await worker.snapshotter.commit(bare));
      if (!record) return;
      for (const [phase, ms] of times) samples.get(phase)?.push(ms);
      cpu += (cpuUsed.user + cpuUsed.system) / 1000;
      children += childUsed * 10;
    };
    await once(-1, false);
    for (let i = 0; i < runs; i++) await once(i, true);
  } finally {
    await worker.close();
    rmSync(root, { recursive: true, force: true });
  }
  const wallMs = Object.fromEntries(RUN_PHASES.map((p) => [p, median(samples.get(p) ?? [])])) as Record<RunPhase, number>;
  return { wallMs, cpuMs: { kiln: cpu / runs, children: children / runs }, runs };
}

/** CPU clock ticks (1/100 s) of this process's waited-for children: /proc/self/stat's cutime + cstime. */
function childTicks(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[13]) + Number(fields[14]);
}

/** The smallest spec `runc run` accepts for /bin/true: `runc spec`'s defaults, no terminal, host network. */
function bareSpec(rootfs: string): unknown {
  return {
    ociVersion: "1.0.2",
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ["/bin/true"], env: ["PATH=/bin"], cwd: "/", noNewPrivileges: true },
    root: { path: rootfs, readonly: false },
    hostname: "bench",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    ],
    linux: { namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }], maskedPaths: [], readonlyPaths: [] },
  };
}

/** A minimal base: /bin/busybox (the host's static one) with /bin/true and /bin/sh links. */
function busyboxLayer(tar: TarView): Buffer {
  const body = readFileSync("/bin/busybox");
  const entry = (e: Record<string, unknown>) => tar.encodeTarHeader({ mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, ...e });
  return Buffer.concat([
    entry({ name: "bin", type: "directory" }),
    entry({ name: "bin/busybox", type: "file", size: body.byteLength }), body, tar.padding(body.byteLength),
    entry({ name: "bin/true", type: "symlink", linkname: "busybox" }),
    entry({ name: "bin/sh", type: "symlink", linkname: "busybox" }),
    entry({ name: "tmp", type: "directory", mode: 0o1777 }),
    tar.endOfArchive(),
  ]);
}

/** The 20,000-file layer: deterministic sizes and bytes. */
export function smallFilesLayer(tar: TarView, files = 20_000, dirs = 200): Buffer {
  const parts: Buffer[] = [];
  const noise = Buffer.alloc(16 * 1024);
  let x = 2463534242;
  for (let i = 0; i < noise.byteLength; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    noise[i] = x & 0xff;
  }
  for (let d = 0; d < dirs; d++) parts.push(tar.encodeTarHeader({ name: `d${d}`, type: "directory", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000 }));
  for (let i = 0; i < files; i++) {
    const size = (i * 7919) % (16 * 1024 + 1);
    parts.push(tar.encodeTarHeader({ name: `d${i % dirs}/f${i}`, type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: 1_600_000_000 }));
    parts.push(noise.subarray(0, size), tar.padding(size));
  }
  parts.push(tar.endOfArchive());
  return Buffer.concat(parts);
}

/** MB/s (10^6 bytes of tar per second) of applying the 20,000-file layer, one sample per run. */
export async function applyLayerRates(repo: string, runs: number): Promise<{ mbPerSecond: number[]; tarBytes: number }> {
  const { applyLayer } = await load<ApplyView>(repo, "worker/snapshotter/apply-layer.js");
  const tar = await load<TarView>(repo, "worker/differ/tar-entry.js");
  const layer = smallFilesLayer(tar);
  const root = mkdtempSync(join(tmpdir(), "kiln-bench-apply-"));
  try {
    const once = async (i: number): Promise<number> => {
      const dir = join(root, `apply-${i}`);
      mkdirSync(dir);
      // Chunks of 64 KiB, as a file or decompressor stream delivers them.
      const chunks = Array.from({ length: Math.ceil(layer.byteLength / 65536) }, (_, c) => layer.subarray(c * 65536, (c + 1) * 65536));
      const started = process.hrtime.bigint();
      await applyLayer(Readable.from(chunks), dir, { layerName: "bench", whiteouts: "overlay" });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      rmSync(dir, { recursive: true, force: true });
      return layer.byteLength / 1e6 / seconds;
    };
    await once(-1);
    const rates: number[] = [];
    for (let i = 0; i < runs; i++) rates.push(await once(i));
    return { mbPerSecond: rates, tarBytes: layer.byteLength };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** `node worker-times.js [REPO]`: both measurements, as JSON on stdout (as root: runc and overlay). */
async function main(): Promise<void> {
  const repo = resolve(process.argv[2] ?? join(import.meta.dirname, "../../.."));
  const run = await trivialRunTimes(repo, 30);
  const breakdown = await trivialRunBreakdown(repo, 15);
  const apply = await applyLayerRates(repo, 5);
  console.log(JSON.stringify({ trivialRunMs: { median: median(run), samples: run }, trivialRunBreakdown: breakdown, applyLayer: { medianMBps: median(apply.mbPerSecond), tarBytes: apply.tarBytes, samples: apply.mbPerSecond } }, null, 1));
}

if (process.argv[1]?.endsWith("worker-times.js") === true) await main();
