import { randomBytes } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { blockSample, encodeBlock, storedDeflate as storedParts, worthCompressing } from "./adaptive-block.js";

const storedDeflate = (data: Buffer, final: boolean): Buffer => Buffer.concat(storedParts(data, final));

describe("storedDeflate", () => {
  it.each([1, 1000, 65535, 65536, 200_000])("writes %i bytes as final stored blocks zlib inflates back", (size) => {
    const data = randomBytes(size);
    const out = storedDeflate(data, true);
    expect(out.byteLength).toBe(size + 5 * Math.ceil(size / 65535));
    expect(inflateRawSync(out).equals(data)).toBe(true);
  });

  it("writes an empty final block for empty input and nothing for empty non-final input", () => {
    expect(inflateRawSync(storedDeflate(Buffer.alloc(0), true)).byteLength).toBe(0);
    expect(storedDeflate(Buffer.alloc(0), false).byteLength).toBe(0);
  });

  it("leaves the stream open when not final, so a compressed block can follow", () => {
    const first = randomBytes(70_000);
    const second = Buffer.alloc(50_000, "kiln ");
    const stream = Buffer.concat([storedDeflate(first, false), deflateRawSync(second, { dictionary: first.subarray(-32768) })]);
    expect(inflateRawSync(stream).equals(Buffer.concat([first, second]))).toBe(true);
  });
});

describe("blockSample", () => {
  it("takes four 8 KiB slices at fixed fractions of a big block, and a small block whole", () => {
    const block = randomBytes(512 * 1024);
    const sample = blockSample(block);
    expect(sample.byteLength).toBe(32 * 1024);
    expect(sample.subarray(8192, 16384).equals(block.subarray(128 * 1024, 136 * 1024))).toBe(true);
    const small = randomBytes(20_000);
    expect(blockSample(small)).toBe(small);
  });
});

describe("encodeBlock", () => {
  const failIfCalled = (): Promise<Buffer> => Promise.reject(new Error("the block should not have been deflated"));

  it("stores an incompressible block without deflating it at the requested level", async () => {
    const block = randomBytes(512 * 1024);
    const out = Buffer.concat(await encodeBlock(block, true, failIfCalled));
    expect(out.equals(storedDeflate(block, true))).toBe(true);
  });

  it("keeps the deflate output of a compressible block", async () => {
    const block = Buffer.alloc(512 * 1024, "layer kiln overlay ");
    const deflated = deflateRawSync(block, { level: 6 });
    const [out, ...rest] = await encodeBlock(block, true, () => Promise.resolve(deflated));
    expect(out).toBe(deflated);
    expect(rest).toEqual([]);
    expect(worthCompressing(block.byteLength, out!.byteLength)).toBe(true);
  });

  it("stores a block whose sample compresses but whose whole does not shrink below 98%", async () => {
    // Zeros only where the sample looks (2 KiB at each quarter), random elsewhere: ~1.6% compressible.
    const block = randomBytes(512 * 1024);
    for (let i = 0; i < 4; i++) block.fill(0, i * 128 * 1024, i * 128 * 1024 + 2048);
    let deflated = false;
    const out = Buffer.concat(await encodeBlock(block, false, () => {
      deflated = true;
      return Promise.resolve(deflateRawSync(block, { level: 6, finishFlush: 2 }));
    }));
    expect(deflated).toBe(true);
    expect(out.equals(storedDeflate(block, false))).toBe(true);
  });
});
