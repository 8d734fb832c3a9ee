import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ParallelGzip } from "./parallel-gzip.js";

const execFileAsync = promisify(execFile);
const BLOCK = 512 * 1024;

async function compress(input: Buffer, chunkSize: number, level = 6): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.byteLength; i += chunkSize) chunks.push(input.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(chunks, { objectMode: false }).pipe(new ParallelGzip({ level }))) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

/** Text-like data deflate can shrink, with some randomness so blocks differ. */
function compressible(size: number): Buffer {
  const words = ["layer ", "kiln ", "busybox ", "overlay ", "\n", "sha256 ", randomBytes(4).toString("hex")];
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const word = words[Math.floor(Math.random() * words.length)]!;
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join("")).subarray(0, size);
}

describe("ParallelGzip", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-pgzip-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([0, 1, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345])("round-trips %i bytes through zlib's gunzip", async (size) => {
    const input = compressible(size);
    expect(gunzipSync(await compress(input, 64 * 1024)).equals(input)).toBe(true);
  });

  it("gives the same bytes however the input is chunked", async () => {
    const input = compressible(2 * BLOCK + 777);
    const a = await compress(input, 1000);
    const b = await compress(input, 300_000);
    const c = await compress(input, input.byteLength);
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
  });

  it("compresses about as well as one deflate stream, thanks to the block dictionaries", async () => {
    const input = compressible(4 * BLOCK);
    const parallel = await compress(input, 64 * 1024);
    const { gzipSync } = await import("node:zlib");
    const single = gzipSync(input, { level: 6 });
    expect(parallel.byteLength).toBeLessThan(single.byteLength * 1.02);
  });

  it("is read by the real gzip tool, which checks the CRC and length trailer", async () => {
    const input = Buffer.concat([compressible(BLOCK + 5), randomBytes(BLOCK)]);
    const file = join(dir, "data.gz");
    await writeFile(file, await compress(input, 100_000));
    await execFileAsync("gzip", ["-t", file]);
    const { stdout } = await execFileAsync("gzip", ["-dc", file], { encoding: "buffer", maxBuffer: 64 << 20 });
    expect(stdout.equals(input)).toBe(true);
  });
});

describe("ParallelGzip on incompressible data", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-pgzip-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("stores incompressible blocks verbatim, costing only 5 bytes per 64 KiB", async () => {
    const input = randomBytes(3 * BLOCK + 1000);
    const out = await compress(input, 64 * 1024);
    expect(out.byteLength).toBeLessThan(input.byteLength * 1.001);
    // Stored blocks hold the input as it is: a slice from the middle of a block is found in the output.
    expect(out.indexOf(input.subarray(BLOCK + 100, BLOCK + 60_000))).toBeGreaterThan(0);
    expect(gunzipSync(out).equals(input)).toBe(true);
  });

  it("compresses the compressible blocks and stores the random ones of mixed data, deterministically", async () => {
    const text = compressible(2 * BLOCK);
    const random = randomBytes(2 * BLOCK);
    const input = Buffer.concat([text, random, text.subarray(0, BLOCK)]);
    const out = await compress(input, 100_000);
    expect(out.byteLength).toBeLessThan(random.byteLength + 3 * BLOCK * 0.6);
    expect(out.indexOf(random.subarray(BLOCK, BLOCK + 60_000))).toBeGreaterThan(0);
    expect((await compress(input, 7777)).equals(out)).toBe(true);
    expect((await compress(input, input.byteLength)).equals(out)).toBe(true);
    const file = join(dir, "mixed.gz");
    await writeFile(file, out);
    const { stdout } = await execFileAsync("gunzip", ["-c", file], { encoding: "buffer", maxBuffer: 64 << 20 });
    expect(stdout.equals(input)).toBe(true);
  });

  it("ends a stream whose last block is stored with a final stored block the system gunzip accepts", async () => {
    for (const size of [BLOCK, BLOCK + 70_000, 40_000]) {
      const input = randomBytes(size);
      const file = join(dir, `tail-${size}.gz`);
      await writeFile(file, await compress(input, 64 * 1024));
      await execFileAsync("gzip", ["-t", file]);
      const { stdout } = await execFileAsync("gunzip", ["-c", file], { encoding: "buffer", maxBuffer: 64 << 20 });
      expect(stdout.equals(input)).toBe(true);
    }
  });

  it("keeps level 0 stored everywhere, through zlib", async () => {
    const input = compressible(BLOCK + 10);
    const out = await compress(input, 64 * 1024, 0);
    expect(out.byteLength).toBeGreaterThan(input.byteLength);
    expect(gunzipSync(out).equals(input)).toBe(true);
  });
});
