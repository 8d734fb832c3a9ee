import { closeSync, openSync, readlinkSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { Readable } from "node:stream";
import { assertNever, KilnError } from "../../solver/llb/index.js";
import { minor, major } from "../snapshotter/copy-tree.js";
import type { SnapshotId, SnapshotMount, Snapshotter } from "../snapshotter/types.js";
import { getXattr, listXattrs } from "../syscalls.js";
import { type Change, seconds } from "./changes.js";
import { encodeTarHeader, endOfArchive, padding, type TarEntry } from "./tar-entry.js";
import { treeChanges } from "./tree-changes.js";
import { upperChanges } from "./upper-changes.js";

export interface DiffOptions {
  readonly signal?: AbortSignal;
}

/** A diff that cannot be made: the snapshot is not committed, or a file changed while being read. */
export class DiffError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_DIFF_FAILED", message, options);
  }
}

const CHUNK = 1 << 20;

/**
 * An uncompressed tar of committed snapshot `id`'s own changes from its parent, made afresh each
 * call: for overlay, a walk of its upperdir only; for native, a comparison of its tree with its
 * parent's. Deletions are `.wh.NAME` entries, opaque directories get a `.wh..wh..opq` entry,
 * files hardlinked within the layer stay hardlinks (the first path in tar order holds the data),
 * xattrs travel as PAX records (overlay's own are left out). Deterministic: siblings in byte
 * order and normalized headers (see tar-entry.ts), so the same tree always gives the same bytes.
 *
 * The snapshot's own directory comes from `view()`: the bind source, or the topmost lower.
 *
 * The stream's chunks are blocks of up to CHUNK bytes packing many headers and small files, not
 * three chunks per file: every chunk crosses the exporter's hash, tap and store streams, and a
 * layer of 20,000 small files spent most of its time in that per-chunk machinery.
 */
export function diffSnapshot(snapshotter: Snapshotter, id: SnapshotId, options: DiffOptions = {}): Readable {
  return Readable.from(diffBytes(snapshotter, id, options.signal), { objectMode: false });
}

async function* diffBytes(snapshotter: Snapshotter, id: SnapshotId, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const info = await snapshotter.info(id);
  if (info.kind !== "committed") throw new DiffError(`Cannot diff snapshot "${id}": it is still active, not committed`);
  const own = ownDirectory(await snapshotter.view(id));
  const out = new TarBlocks();
  const links = new Map<string, string>();
  // Both walks are synchronous: no promise per entry unless a file is large.
  const changes =
    snapshotter.kind === "overlay"
      ? upperChanges(own)
      : treeChanges(own, info.parent === null ? null : ownDirectory(await snapshotter.view(info.parent)));
  for (const change of changes) {
    signal?.throwIfAborted();
    const large = writeChange(change, links, out);
    // A large file's header goes out before its body. A plain loop: `yield*` over an array
    // would await even when no block is full, which is most entries.
    for (const block of out.take(large !== undefined)) yield block;
    if (large !== undefined) yield* largeFileBytes(large, out);
  }
  out.write(endOfArchive());
  for (const block of out.take(true)) yield block;
}

function ownDirectory(mount: SnapshotMount): string {
  switch (mount.kind) {
    case "bind":
      return mount.source;
    case "overlay": {
      const top = mount.lowerdirs[0];
      if (top === undefined) throw new DiffError("Cannot diff a snapshot whose view has no directories");
      return top;
    }
    default:
      return assertNever(mount);
  }
}

/** A regular file whose body is streamed on its own after its header (see largeFileBytes). */
interface LargeFile {
  readonly abs: string;
  readonly size: number;
}

/**
 * Writes `change`'s header (and a small file's body and padding) into `out`; returns the file
 * whose body is larger than CHUNK, which the caller streams. Synchronous, as the walks are.
 */
function writeChange(change: Change, links: Map<string, string>, out: TarBlocks): LargeFile | undefined {
  switch (change.kind) {
    case "whiteout":
      out.write(encodeTarHeader({ name: whiteoutName(change.rel, false), type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: change.mtime }));
      return undefined;
    case "opaque":
      out.write(encodeTarHeader({ name: whiteoutName(change.rel, true), type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: change.mtime }));
      return undefined;
    case "entry":
      break;
    default:
      assertNever(change);
  }
  const { rel, abs, stats } = change;
  const base = { name: rel, mode: Number(stats.mode & 0o7777n), uid: Number(stats.uid), gid: Number(stats.gid), mtime: seconds(stats), size: 0, xattrs: xattrsOf(abs) };
  if (stats.isFile()) {
    if (stats.nlink > 1n) {
      const key = `${stats.dev}:${stats.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        out.write(encodeTarHeader({ ...base, type: "link", linkname: first, xattrs: [] }));
        return undefined;
      }
      links.set(key, rel);
    }
    const size = Number(stats.size);
    out.write(encodeTarHeader({ ...base, type: "file", size }));
    if (size > CHUNK) return { abs, size };
    out.readFile(abs, size);
    out.write(padding(size));
    return undefined;
  }
  let entry: TarEntry;
  if (stats.isDirectory()) entry = { ...base, type: "directory" };
  else if (stats.isSymbolicLink()) entry = { ...base, type: "symlink", linkname: readlinkSync(abs) };
  else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
    entry = { ...base, type: stats.isCharacterDevice() ? "char" : "block", devmajor: major(stats.rdev), devminor: minor(stats.rdev) };
  } else if (stats.isFIFO()) entry = { ...base, type: "fifo" };
  else return undefined; // A socket cannot be part of a layer.
  out.write(encodeTarHeader(entry));
  return undefined;
}

function whiteoutName(rel: string, opaque: boolean): string {
  if (opaque) return `${rel}/.wh..wh..opq`;
  const slash = rel.lastIndexOf("/");
  return slash === -1 ? `.wh.${rel}` : `${rel.slice(0, slash)}/.wh.${rel.slice(slash + 1)}`;
}

/**
 * A large file's bytes, exactly `size` of them, in CHUNK reads through the thread pool (the
 * header is already in `out`, taken by the caller); then its padding goes into `out`. A file
 * that changed size since its stat fails the diff.
 */
async function* largeFileBytes({ abs, size }: LargeFile, out: TarBlocks): AsyncGenerator<Buffer> {
  const handle = await open(abs, "r");
  try {
    let done = 0;
    while (done < size) {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK, size - done));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) throw shrank(abs, done, size);
      done += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
  out.write(padding(size));
}

function shrank(abs: string, done: number, size: number): DiffError {
  return new DiffError(`Cannot diff "${abs}": the file shrank while being read (${done} of ${size} bytes)`);
}

/**
 * The tar being made, packed into blocks of CHUNK bytes. `write` and `readFile` append (a small
 * file is read straight into the block, with synchronous calls: a thread-pool round trip per
 * open, read and close cost more than the calls for small files); `take` hands over the blocks
 * that are full, or with `all` everything written. A block handed over is never written again.
 */
class TarBlocks {
  #block = Buffer.allocUnsafe(CHUNK);
  /** Where the bytes not yet handed over start in `#block`, and where they end. */
  #start = 0;
  #end = 0;
  readonly #full: Buffer[] = [];

  write(bytes: Buffer): void {
    let done = 0;
    while (done < bytes.byteLength) {
      const n = bytes.copy(this.#room(), 0, done);
      this.#end += n;
      done += n;
    }
  }

  readFile(abs: string, size: number): void {
    if (size === 0) return;
    const fd = openSync(abs, "r");
    try {
      let done = 0;
      while (done < size) {
        const room = this.#room();
        const bytesRead = readSync(fd, room, 0, Math.min(room.byteLength, size - done), done);
        if (bytesRead === 0) throw shrank(abs, done, size);
        this.#end += bytesRead;
        done += bytesRead;
      }
    } finally {
      closeSync(fd);
    }
  }

  take(all = false): Buffer[] {
    if (all && this.#end > this.#start) {
      this.#full.push(this.#block.subarray(this.#start, this.#end));
      this.#start = this.#end;
    }
    return this.#full.splice(0);
  }

  /** The free space at the end of the current block, starting a new block when it is full. */
  #room(): Buffer {
    if (this.#end === CHUNK) {
      this.#full.push(this.#block.subarray(this.#start, this.#end));
      this.#block = Buffer.allocUnsafe(CHUNK);
      this.#start = 0;
      this.#end = 0;
    }
    return this.#block.subarray(this.#end);
  }
}

function xattrsOf(abs: string): [string, Buffer][] {
  const result: [string, Buffer][] = [];
  for (const name of listXattrs(abs)) {
    if (name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")) continue;
    const value = getXattr(abs, name);
    if (value !== undefined) result.push([name, Buffer.from(value)]);
  }
  return result;
}
