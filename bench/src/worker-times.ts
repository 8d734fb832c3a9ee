import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
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
    resolveOp(session: { localDirs: Record<string, string> }): (vertex: unknown) => {
      run(inputs: readonly { id: string }[], context: unknown): Promise<readonly { id: string }[]>;
    };
    close(): Promise<void>;
  }>;
}
interface SnapshotterView {
  prepare(parent: string | null): Promise<{ upperdir: string }>;
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
  const apply = await applyLayerRates(repo, 5);
  console.log(JSON.stringify({ trivialRunMs: { median: median(run), samples: run }, applyLayer: { medianMBps: median(apply.mbPerSecond), tarBytes: apply.tarBytes, samples: apply.mbPerSecond } }, null, 1));
}

if (process.argv[1]?.endsWith("worker-times.js") === true) await main();
