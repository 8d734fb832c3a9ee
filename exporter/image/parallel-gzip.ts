import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { constants, crc32, type ZlibOptions } from "node:zlib";
import { deflateRawAsync, encodeBlock } from "./adaptive-block.js";

/** Input bytes per independently compressed block (pigz uses 128 KiB; larger blocks cost less per call). */
const BLOCK_SIZE = 512 * 1024;
/** Deflate's window: each block is primed with this much of the input before it, so the ratio stays that of one stream. */
const DICTIONARY_SIZE = 32 * 1024;

export interface ParallelGzipOptions {
  /** zlib level 0-9; default 6, like `gzip -6`. */
  readonly level?: number;
  /** Blocks compressing at once; default twice the core count (zlib's async calls run on libuv's thread pool). */
  readonly concurrency?: number;
}

/**
 * A gzip compressor that uses every core for one stream, the way pigz does: the input is cut into
 * fixed 512 KiB blocks; each block is raw-deflated on libuv's thread pool with the 32 KiB before it
 * as a preset dictionary and ends on a sync flush (the last one on a final block), so the
 * concatenation is one valid deflate stream inside one gzip member (header with mtime 0, CRC-32 and
 * length trailer). Block boundaries depend only on byte offsets, never on how the input was
 * chunked, so the same bytes always give the same output: layer digests stay reproducible.
 * Output order is input order; at most `concurrency` blocks are in flight (backpressure).
 *
 * Adaptive (levels 1-9): a block that a level-1 probe of a sample, or the real deflate, cannot
 * shrink below 98% is written as stored deflate blocks instead (adaptive-block.ts), so an
 * incompressible layer costs about a copy plus the CRC. The choice depends only on the block's
 * bytes, so output stays deterministic; blocks that compress give the same bytes as plain deflate.
 * Level 0 is zlib's stored output throughout.
 */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #concurrency: number;
  /** Input not yet cut into a block. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The last DICTIONARY_SIZE bytes of the previous block (empty before the first). */
  #dictionary: Buffer = Buffer.alloc(0);
  /** Blocks compressing, oldest first; each resolves to its deflate output, in parts. */
  #inFlight: Promise<readonly Buffer[]>[] = [];
  #crc = 0;
  #length = 0;

  constructor(options: ParallelGzipOptions = {}) {
    super();
    this.#level = options.level ?? 6;
    this.#concurrency = Math.max(1, options.concurrency ?? availableParallelism() * 2);
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (Unix): fixed, so equal input gives equal bytes.
    this.push(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#crc = crc32(chunk, this.#crc);
    this.#length += chunk.byteLength;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    this.#drainFullBlocks().then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    const last = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#inFlight.push(this.#compress(last, true));
    this.#emitAll()
      .then(() => {
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(this.#crc >>> 0, 0);
        trailer.writeUInt32LE(this.#length % 2 ** 32, 4);
        callback(null, trailer);
      })
      .catch(callback);
  }

  async #drainFullBlocks(): Promise<void> {
    while (this.#pendingBytes >= BLOCK_SIZE) {
      const all = Buffer.concat(this.#pending, this.#pendingBytes);
      const block = all.subarray(0, BLOCK_SIZE);
      const rest = all.subarray(BLOCK_SIZE);
      this.#pending = rest.byteLength === 0 ? [] : [rest];
      this.#pendingBytes = rest.byteLength;
      this.#inFlight.push(this.#compress(block, false));
      while (this.#inFlight.length >= this.#concurrency) await this.#emitOldest();
    }
  }

  #compress(block: Buffer, final: boolean): Promise<readonly Buffer[]> {
    const options: ZlibOptions = {
      level: this.#level,
      // One output buffer per block: a single thread-pool job instead of one per 16 KiB of output.
      chunkSize: BLOCK_SIZE + 64 * 1024,
      ...(this.#dictionary.byteLength === 0 ? {} : { dictionary: this.#dictionary }),
      ...(final ? {} : { finishFlush: constants.Z_SYNC_FLUSH }),
    };
    // The next block's dictionary is this block's tail (copied: `block` may view a larger buffer).
    const tail = block.subarray(Math.max(0, block.byteLength - DICTIONARY_SIZE));
    this.#dictionary = Buffer.concat([this.#dictionary, tail]).subarray(-DICTIONARY_SIZE);
    const deflate = (): Promise<Buffer> => deflateRawAsync(block, options);
    const job = this.#level === 0 ? deflate().then((output) => [output]) : encodeBlock(block, final, deflate);
    // Rejections are observed when the block is emitted; avoid an unhandled rejection before then.
    job.catch(() => {});
    return job;
  }

  async #emitOldest(): Promise<void> {
    const oldest = this.#inFlight.shift();
    if (oldest !== undefined) for (const part of await oldest) this.push(part);
  }

  async #emitAll(): Promise<void> {
    while (this.#inFlight.length > 0) await this.#emitOldest();
  }
}
