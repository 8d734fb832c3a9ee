import { spawn } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable, type Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";

/**
 * Issue 6's compression target: kiln's parallel gzip (in process, through kiln's exporter entry,
 * dist/exporter/index.js) against one `gzip -6` process over the same bytes, alternating, several
 * runs each. Both are timed on the wall clock (what the target is about) and on CPU time, which
 * tells a slow parallel compressor from a machine whose cores were busy with something else.
 *
 * The exporter is loaded by URL and used through the small structural view below, so the harness
 * keeps treating kiln as a black box and compiles without kiln's declarations.
 */
interface ExporterView {
  readonly ParallelGzip: new (options: { level: number }) => Duplex;
}

function isExporterView(value: unknown): value is ExporterView {
  return typeof (value as Partial<Record<keyof ExporterView, unknown>>).ParallelGzip === "function";
}

/** Per run: milliseconds of wall time and of CPU time (user + system), and the compressed size. */
export interface GzipSample {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly outBytes: number;
}

export type GzipThroughput =
  | { readonly kind: "ok"; readonly inputBytes: number; readonly kiln: readonly GzipSample[]; readonly gzip: readonly GzipSample[] }
  | { readonly kind: "failed"; readonly reason: string };

const WORDS = ["layer", "image", "kiln", "build", "digest", "manifest", "config", "snapshot", "overlay", "registry", "usr/lib", "etc"];

/**
 * `size` bytes of mixed data, the same every time: two of every three MiB are text (words from a
 * fixed pseudo-random sequence, about 3:1 under gzip), the third an AES-CTR keystream
 * (incompressible), roughly what a layer of binaries, scripts and compressed assets holds.
 */
export function mixedData(size: number): Buffer {
  const data = Buffer.alloc(size);
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  let state = 12345;
  for (let offset = 0, n = 0; offset < size; offset += 1 << 20, n++) {
    const length = Math.min(1 << 20, size - offset);
    if (n % 3 === 2) {
      cipher.update(Buffer.alloc(length)).copy(data, offset);
      continue;
    }
    const parts: string[] = [];
    let written = 0;
    while (written < length) {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      const word = `${WORDS[state % WORDS.length]}${state % 17 === 0 ? "\n" : " "}${state % 1000} `;
      parts.push(word);
      written += word.length;
    }
    data.write(parts.join("").slice(0, length), offset, "latin1");
  }
  return data;
}

async function kilnOnce(exporter: ExporterView, data: Buffer): Promise<GzipSample> {
  let outBytes = 0;
  const chunks = function* (): Generator<Buffer> {
    for (let o = 0; o < data.byteLength; o += 1 << 20) yield data.subarray(o, o + (1 << 20));
  };
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await pipeline(Readable.from(chunks()), new exporter.ParallelGzip({ level: 6 }), new Writable({
    write(chunk: Buffer, _encoding, callback) {
      outBytes += chunk.byteLength;
      callback();
    },
  }));
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000, outBytes };
}

/** `gzip -6 -c < FILE`, its output counted; CPU time from GNU time. */
function gzipOnce(file: string): Promise<GzipSample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-f", "%U %S", "sh", "-c", 'exec gzip -6 -c < "$0"', file], { stdio: ["ignore", "pipe", "pipe"] });
    let outBytes = 0;
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (outBytes += chunk.byteLength));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.on("error", reject);
    child.on("close", (code) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const [user, system] = (stderr.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
      if (code !== 0 || user === undefined || system === undefined || Number.isNaN(user + system)) reject(new Error(`gzip -6 failed (${code}): ${stderr.trim()}`));
      else resolve({ wallMs, cpuMs: (user + system) * 1000, outBytes });
    });
  });
}

/** Alternates `runs` kiln and `gzip -6` compressions of `size` bytes of mixed data (a file under `scratch`). */
export async function measureGzipThroughput(repo: string, scratch: string, size: number, runs: number): Promise<GzipThroughput> {
  const file = join(scratch, "gzip-input.bin");
  try {
    const exporter: unknown = await import(pathToFileURL(join(repo, "dist", "exporter", "index.js")).href);
    if (!isExporterView(exporter)) return { kind: "failed", reason: "kiln's exporter entry does not export ParallelGzip" };
    const data = mixedData(size);
    writeFileSync(file, data);
    const kiln: GzipSample[] = [];
    const gzip: GzipSample[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so a change of machine load hits both alike.
      if (i % 2 === 0) {
        kiln.push(await kilnOnce(exporter, data));
        gzip.push(await gzipOnce(file));
      } else {
        gzip.push(await gzipOnce(file));
        kiln.push(await kilnOnce(exporter, data));
      }
    }
    return { kind: "ok", inputBytes: size, kiln, gzip };
  } catch (error) {
    return { kind: "failed", reason: error instanceof Error ? error.message : String(error) };
  } finally {
    rmSync(file, { force: true });
  }
}
