import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readlink } from "node:fs/promises";
import { join } from "node:path";
import { sha256, type Digest } from "../../solver/llb/index.js";
import { visitEntries, type SelectedEntry, type Selection } from "./selection.js";
import type { ContentHashes } from "./content-index.js";
import type { StatCache } from "./stat-cache.js";

export interface ChecksumOptions {
  readonly selection?: Selection;
  /** Owner recorded for every entry instead of its own (local sources normalise owners to 0:0). */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Remembers content hashes between calls; the caller saves it. */
  readonly cache?: StatCache;
  /** Hashes known without reading (a snapshot's content index), consulted after `cache`. */
  readonly known?: ContentHashes;
  readonly signal?: AbortSignal;
  /** Called with each selected entry's path and the record hashed for it (`--explain-cache` lists them). */
  readonly onEntry?: (path: string, record: string) => void;
}

/**
 * The content checksum of the selected files of the tree at `root`: sha256 over one record per
 * entry in `selectEntries` order, each holding its path, type, permission and special bits,
 * owner, size, and the sha256 of its content (regular files) or its link target (symlinks) or
 * its device number (devices). Times are not part of it, as in BuildKit's content checksums: a
 * touched but unchanged file keeps the checksum. Deterministic across machines and runs.
 */
export async function contentChecksum(root: string, options: ChecksumOptions = {}): Promise<Digest> {
  const hash = createHash("sha256");
  // Records reach the hash in batches: one update per file was a native call each.
  let batch = "";
  const add = (path: string, record: string): void => {
    options.onEntry?.(path, record);
    batch += `${record}\n`;
    if (batch.length >= HASH_BATCH) {
      hash.update(batch);
      batch = "";
    }
  };
  await visitEntries(root, options.selection ?? {}, (entry) => {
    // A file whose hash is remembered (the common case of a rebuild) is recorded synchronously:
    // no promise per entry.
    const known = entry.stat.isFile() ? (options.cache?.get(entry.path, entry.stat) ?? options.known?.get(entry.path, entry.stat)) : undefined;
    if (known !== undefined) return add(entry.path, `${recordHead(entry, options)} ${entry.stat.size} ${known}`);
    return entryRecord(root, entry, options).then((record) => add(entry.path, record));
  }, options.signal);
  hash.update(batch);
  return `sha256:${hash.digest("hex")}` as Digest;
}

/** Characters of records collected before they are hashed. */
const HASH_BATCH = 64 * 1024;

/** The record of an entry: its path, type, permission bits and owner, then what its type adds. */
function recordHead(entry: SelectedEntry, options: ChecksumOptions): string {
  const { stat, path } = entry;
  const uid = options.owner?.uid ?? Number(stat.uid);
  const gid = options.owner?.gid ?? Number(stat.gid);
  return `${JSON.stringify(path)} ${typeOf(entry)} ${(stat.mode & 0o7777n).toString(8)} ${uid}:${gid}`;
}

async function entryRecord(root: string, entry: SelectedEntry, options: ChecksumOptions): Promise<string> {
  const { stat, path } = entry;
  const head = recordHead(entry, options);
  if (stat.isFile()) {
    options.signal?.throwIfAborted();
    const content = await hashFile(join(root, path), options.signal);
    options.cache?.set(path, stat, content);
    return `${head} ${stat.size} ${content}`;
  }
  if (stat.isSymbolicLink()) return `${head} ${JSON.stringify(await readlink(join(root, path)))}`;
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return `${head} ${stat.rdev}`;
  return head;
}

function typeOf(entry: SelectedEntry): string {
  const s = entry.stat;
  if (s.isDirectory()) return "dir";
  if (s.isFile()) return "file";
  if (s.isSymbolicLink()) return "symlink";
  if (s.isCharacterDevice()) return "char";
  if (s.isBlockDevice()) return "block";
  if (s.isFIFO()) return "fifo";
  return "socket";
}

/** The hex sha256 of a file's content. */
export function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    const stream = createReadStream(path, signal === undefined ? {} : { signal });
    stream.on("data", (chunk) => hash.update(chunk));
    stream.once("error", reject);
    stream.once("end", () => resolve(hash.digest("hex")));
  });
}

/** The checksum file name a StatCache for directory `dir` uses under a state directory. */
export function statCacheName(dir: string): string {
  return `${sha256(dir).slice("sha256:".length, "sha256:".length + 32)}.json`;
}
