import { closeSync, openSync, readSync } from "node:fs";
import { open, readlink } from "node:fs/promises";
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
 */
export function diffSnapshot(snapshotter: Snapshotter, id: SnapshotId, options: DiffOptions = {}): Readable {
  return Readable.from(diffBytes(snapshotter, id, options.signal), { objectMode: false });
}

async function* diffBytes(snapshotter: Snapshotter, id: SnapshotId, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const info = await snapshotter.info(id);
  if (info.kind !== "committed") throw new DiffError(`Cannot diff snapshot "${id}": it is still active, not committed`);
  const own = ownDirectory(await snapshotter.view(id));
  const changes =
    snapshotter.kind === "overlay"
      ? upperChanges(own)
      : treeChanges(own, info.parent === null ? null : ownDirectory(await snapshotter.view(info.parent)));
  const links = new Map<string, string>();
  for await (const change of changes) {
    signal?.throwIfAborted();
    yield* changeBytes(change, links);
  }
  yield endOfArchive();
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

async function* changeBytes(change: Change, links: Map<string, string>): AsyncGenerator<Buffer> {
  switch (change.kind) {
    case "whiteout":
      yield encodeTarHeader({ name: whiteoutName(change.rel, false), type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: change.mtime });
      return;
    case "opaque":
      yield encodeTarHeader({ name: whiteoutName(change.rel, true), type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: change.mtime });
      return;
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
        yield encodeTarHeader({ ...base, type: "link", linkname: first, xattrs: [] });
        return;
      }
      links.set(key, rel);
    }
    const size = Number(stats.size);
    yield encodeTarHeader({ ...base, type: "file", size });
    yield* fileBytes(abs, size);
    yield padding(size);
    return;
  }
  let entry: TarEntry;
  if (stats.isDirectory()) entry = { ...base, type: "directory" };
  else if (stats.isSymbolicLink()) entry = { ...base, type: "symlink", linkname: await readlink(abs) };
  else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
    entry = { ...base, type: stats.isCharacterDevice() ? "char" : "block", devmajor: major(stats.rdev), devminor: minor(stats.rdev) };
  } else if (stats.isFIFO()) entry = { ...base, type: "fifo" };
  else return; // A socket cannot be part of a layer.
  yield encodeTarHeader(entry);
}

function whiteoutName(rel: string, opaque: boolean): string {
  if (opaque) return `${rel}/.wh..wh..opq`;
  const slash = rel.lastIndexOf("/");
  return slash === -1 ? `.wh.${rel}` : `${rel.slice(0, slash)}/.wh.${rel.slice(slash + 1)}`;
}

/**
 * The file's bytes, exactly `size` of them: a file that changed size since its stat fails the diff.
 * A file of at most CHUNK bytes is read with synchronous calls: a layer of many small files
 * otherwise spends most of its time in thread-pool round trips (open, read, close per file).
 */
async function* fileBytes(abs: string, size: number): AsyncGenerator<Buffer> {
  if (size <= CHUNK) {
    if (size > 0) yield smallFileBytes(abs, size);
    return;
  }
  const handle = await open(abs, "r");
  try {
    let done = 0;
    while (done < size) {
      const buffer = Buffer.alloc(Math.min(CHUNK, size - done));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) throw new DiffError(`Cannot diff "${abs}": the file shrank while being read (${done} of ${size} bytes)`);
      done += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

function smallFileBytes(abs: string, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  const fd = openSync(abs, "r");
  try {
    let done = 0;
    while (done < size) {
      const bytesRead = readSync(fd, buffer, done, size - done, done);
      if (bytesRead === 0) throw new DiffError(`Cannot diff "${abs}": the file shrank while being read (${done} of ${size} bytes)`);
      done += bytesRead;
    }
  } finally {
    closeSync(fd);
  }
  return buffer;
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
