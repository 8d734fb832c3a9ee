import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";

/** How an archive's bytes are compressed, as moby/go-archive's `compression.Detect` tells them apart. */
export type Compression = "none" | "gzip" | "bzip2" | "xz" | "zstd";

/**
 * The compression of a file whose first bytes are `head`, by magic number only (never by name):
 * bzip2 `BZh`, gzip `1f 8b 08`, xz `fd 37 7a 58 5a 00`, zstd `28 b5 2f fd` or a zstd skippable
 * frame (`0x184D2A5?` little-endian); anything else is "none".
 */
export function detectCompression(head: Uint8Array): Compression {
  const starts = (magic: readonly number[]) => magic.every((b, i) => head[i] === b);
  if (starts([0x42, 0x5a, 0x68])) return "bzip2";
  if (starts([0x1f, 0x8b, 0x08])) return "gzip";
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return "xz";
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return "zstd";
  if (head.length >= 8 && ((Buffer.from(head).readUInt32LE(0) & 0xfffffff0) >>> 0) === 0x184d2a50) return "zstd";
  return "none";
}

/** The decompressor program of each compression Node cannot undo itself (Debian: bzip2, xz-utils, zstd). */
const PROGRAMS: Readonly<Record<"bzip2" | "xz" | "zstd", string>> = { bzip2: "bzip2", xz: "xz", zstd: "zstd" };

/**
 * The decompressed bytes of the file at `path`. gzip is undone by zlib, bzip2, xz and zstd by
 * their programs (`-dc`, the file as stdin); a decompressor that fails makes the stream error
 * with its own message. The caller owns the stream: destroying it stops the program.
 */
export function openDecompressed(path: string, compression: Compression, signal?: AbortSignal): Readable {
  switch (compression) {
    case "none":
      return createReadStream(path);
    case "gzip": {
      const gunzip = createGunzip();
      const file = createReadStream(path);
      file.on("error", (error) => gunzip.destroy(error));
      gunzip.on("close", () => file.destroy());
      return file.pipe(gunzip);
    }
    case "bzip2":
    case "xz":
    case "zstd":
      return spawnDecompressor(PROGRAMS[compression], path, signal);
  }
}

function spawnDecompressor(program: string, path: string, signal?: AbortSignal): Readable {
  const out = new PassThrough();
  const child = spawn(program, ["-dc"], { stdio: ["pipe", "pipe", "pipe"], ...(signal === undefined ? {} : { signal }) });
  const file = createReadStream(path);
  const stderr: Buffer[] = [];
  let finished = false;
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  file.on("error", (error) => out.destroy(error));
  // The program stops reading when the caller stops early: that EPIPE is no error.
  child.stdin.on("error", () => {});
  file.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on("error", (error) => out.destroy(error));
  child.on("close", (code, sig) => {
    finished = true;
    if (code === 0) {
      // stdout has delivered everything once the process has closed.
      out.end();
      return;
    }
    const message = Buffer.concat(stderr).toString("utf8").trim().split("\n").pop() ?? "";
    out.destroy(new Error(message === "" ? `${program} exited with ${sig ?? `code ${code ?? "?"}`}` : message.replace(/^[^:]*:\s*\(stdin\):\s*/u, "")));
  });
  out.on("close", () => {
    file.destroy();
    if (!finished) child.kill();
  });
  return out;
}

/** The first `count` bytes of a stream (fewer at its end), destroying it afterwards; an error reading counts as the end. */
async function readHead(stream: Readable, count: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).byteLength;
      if (size >= count) break;
    }
  } catch {
    // A stream that fails before `count` bytes: what was read is all there is.
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, count);
}

const BLOCK = 512;

/**
 * Whether `block` is a tar header Go's archive/tar would accept as the first entry: not all
 * zeros, a checksum field that parses as octal and equals the unsigned or signed byte sum of
 * the header (the checksum field counted as spaces), and an octal or base-256 size field.
 */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < BLOCK || block.every((b) => b === 0)) return false;
  const field = Buffer.from(block.subarray(148, 156)).toString("latin1").replace(/^[ \0]+|[ \0]+$/gu, "");
  if (!/^[0-7]*$/u.test(field)) return false;
  const expected = field === "" ? 0 : Number.parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  if (expected !== unsigned && expected !== signed) return false;
  const size = block.subarray(124, 136);
  if (((size[0] as number) & 0x80) !== 0) return true;
  return /^[0-7]*$/u.test(Buffer.from(size).toString("latin1").replace(/^[ \0]+|[ \0]+$/gu, ""));
}

/**
 * BuildKit's `isArchivePath` for ADD: the compression of the regular file at `path` when its
 * (decompressed) content starts with a valid tar header, otherwise null: a directory, symlink,
 * empty or short file, a compressed file that is not a tar inside, or one whose first bytes
 * fail to decompress is not an archive and is copied as it is. Decided by content, never by name.
 */
export async function archiveCompression(path: string, signal?: AbortSignal): Promise<Compression | null> {
  const handle = await open(path, "r");
  let head: Buffer;
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return null;
    const buffer = Buffer.alloc(BLOCK);
    const { bytesRead } = await handle.read(buffer, 0, BLOCK, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const compression = detectCompression(head);
  const first = compression === "none" ? head : await readHead(openDecompressed(path, compression, signal), BLOCK);
  return isTarHeader(first) ? compression : null;
}
