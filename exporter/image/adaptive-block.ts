import { deflateRaw, type ZlibOptions } from "node:zlib";

/**
 * How ParallelGzip encodes one block of its input, decided from the block's bytes alone so the
 * same input always gives the same output:
 *
 * 1. A sample (up to four 8 KiB slices at fixed fractions of the block, concatenated) is
 *    raw-deflated at level 1. If that does not shrink it below {@link STORE_RATIO} of its size, the
 *    block is taken as incompressible (random, encrypted, already compressed) and written as
 *    stored deflate blocks: a copy, no compression work.
 * 2. Otherwise the block is deflated at the requested level. If even that output is not below
 *    {@link STORE_RATIO} of the input, the stored form is written instead (it is at most 5 bytes
 *    per 64 KiB bigger than the input and far cheaper to inflate).
 *
 * Level 0 never gets here: ParallelGzip hands it to zlib, whose level 0 is stored blocks anyway.
 */
export const STORE_RATIO = 0.98;
const SAMPLE_SLICES = 4;
const SAMPLE_SLICE_SIZE = 8 * 1024;
/** The largest stored deflate block (LEN is 16 bits). */
const MAX_STORED = 65535;

/**
 * The sample step 1 judges: the whole block when it is small, else SAMPLE_SLICES slices at
 * offsets i/SAMPLE_SLICES of its length. Depends only on the block's bytes.
 */
export function blockSample(block: Buffer): Buffer {
  if (block.byteLength <= SAMPLE_SLICES * SAMPLE_SLICE_SIZE) return block;
  const slices: Buffer[] = [];
  for (let i = 0; i < SAMPLE_SLICES; i++) {
    const start = Math.floor((block.byteLength * i) / SAMPLE_SLICES);
    slices.push(block.subarray(start, start + SAMPLE_SLICE_SIZE));
  }
  return Buffer.concat(slices);
}

/** Whether a deflated size counts as compressed: below STORE_RATIO of the input. */
export function worthCompressing(inputBytes: number, outputBytes: number): boolean {
  return outputBytes < inputBytes * STORE_RATIO;
}

/**
 * `data` as stored deflate blocks (BTYPE 00), starting on a byte boundary, as every ParallelGzip
 * block does (the one before it ended on a sync flush or is the first). With `final`, the last
 * stored block has BFINAL set (an empty input then gives one empty final block); otherwise the
 * output leaves the stream byte-aligned and open, like a sync flush, so the next block can follow.
 * Empty and non-final: no bytes at all. Returned as parts to write in order: each 5-byte header,
 * then a view of `data` (not a copy, so `data` must not change afterwards).
 */
export function storedDeflate(data: Buffer, final: boolean): Buffer[] {
  const count = Math.max(final ? 1 : 0, Math.ceil(data.byteLength / MAX_STORED));
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const start = i * MAX_STORED;
    const length = Math.min(MAX_STORED, data.byteLength - start);
    const header = Buffer.allocUnsafe(5);
    header[0] = final && i === count - 1 ? 0x01 : 0x00;
    header.writeUInt16LE(length, 1);
    header.writeUInt16LE(~length & 0xffff, 3);
    parts.push(header);
    if (length > 0) parts.push(data.subarray(start, start + length));
  }
  return parts;
}

/** zlib's raw deflate on libuv's thread pool, as a promise. */
export function deflateRawAsync(data: Buffer, options: ZlibOptions): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    deflateRaw(data, options, (error, result) => (error === null ? resolve(result) : reject(error)));
  });
}

/**
 * Encodes one block per the rule above, as parts to write in order. `compress` deflates it at the requested level (with its
 * dictionary and flush mode); it is called only when the sample says the block may shrink.
 */
export async function encodeBlock(block: Buffer, final: boolean, compress: () => Promise<Buffer>): Promise<Buffer[]> {
  if (block.byteLength > 0) {
    const sample = blockSample(block);
    const probe = await deflateRawAsync(sample, { level: 1, chunkSize: sample.byteLength + 1024 });
    if (!worthCompressing(sample.byteLength, probe.byteLength)) return storedDeflate(block, final);
  }
  const compressed = await compress();
  return block.byteLength > 0 && !worthCompressing(block.byteLength, compressed.byteLength) ? storedDeflate(block, final) : [compressed];
}
