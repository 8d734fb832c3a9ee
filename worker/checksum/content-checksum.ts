import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readlink } from "node:fs/promises";
import { join } from "node:path";
import { sha256, type Digest } from "../../solver/llb/index.js";
import { selectEntries, type SelectedEntry, type Selection } from "./selection.js";
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
  const entries = await selectEntries(root, options.selection ?? {}, options.signal);
  const hash = createHash("sha256");
  for (const entry of entries) {
    options.signal?.throwIfAborted();
    const record = await entryRecord(root, entry, options);
    options.onEntry?.(entry.path, record);
    hash.update(record);
    hash.update("\n");
  }
  return `sha256:${hash.digest("hex")}` as Digest;
}

async function entryRecord(root: string, entry: SelectedEntry, options: ChecksumOptions): Promise<string> {
  const { stat, path } = entry;
  const uid = options.owner?.uid ?? Number(stat.uid);
  const gid = options.owner?.gid ?? Number(stat.gid);
  const mode = (stat.mode & 0o7777n).toString(8);
  const head = `${JSON.stringify(path)} ${typeOf(entry)} ${mode} ${uid}:${gid}`;
  if (stat.isFile()) {
    let content = options.cache?.get(path, stat) ?? options.known?.get(path, stat);
    if (content === undefined) {
      content = await hashFile(join(root, path), options.signal);
      options.cache?.set(path, stat, content);
    }
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
