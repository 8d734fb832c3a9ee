import type { BigIntStats } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseRecordLines } from "./record-lines.js";

/** Looks up the content hash (hex sha256) of a regular file by its path and current lstat. */
export interface ContentHashes {
  get(path: string, stat: BigIntStats): string | undefined;
}

/**
 * The content hashes of the regular files of one committed snapshot, written by whoever made
 * the snapshot and knew them anyway (the local source knows them from its stat cache), so a COPY
 * checksum of a selection of that snapshot reads no file content. Snapshots are immutable, so
 * the hashes stay true; each entry still carries the file's inode, size and mtime, and `get`
 * answers only when the file's lstat has exactly those (a stale or foreign entry, or a file not
 * listed, answers undefined: the caller reads the file). Not keyed by ctime: linking the same
 * inode into a later snapshot changes it.
 *
 * One file per snapshot (`contentIndexFile`): FORMAT, then `<ino>:<size>:<mtimeNs> <hex> <path>`
 * per file, written to a temp name and renamed. A missing or unreadable index is empty.
 */
export class ContentIndex implements ContentHashes {
  readonly #entries: ReadonlyMap<string, string>;

  private constructor(entries: ReadonlyMap<string, string>) {
    this.#entries = entries;
  }

  static readonly empty = new ContentIndex(new Map());

  /** Loads the index at `file`; a missing, unreadable or foreign one is empty. */
  static async open(file: string): Promise<ContentIndex> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      return ContentIndex.empty;
    }
    const entries = parseRecordLines(text, FORMAT);
    return entries.size === 0 ? ContentIndex.empty : new ContentIndex(entries);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The hash of `path` when `stat` is that of the file the index describes. */
  get(path: string, stat: BigIntStats): string | undefined {
    const entry = this.#entries.get(path);
    if (entry === undefined) return undefined;
    const space = entry.indexOf(" ");
    return entry.slice(0, space) === fileKey(stat) ? entry.slice(space + 1) : undefined;
  }

  /** The raw entry of `path` (`<key> <hex>`), to carry into the index of a snapshot sharing the file's inode. */
  entry(path: string): string | undefined {
    return this.#entries.get(path);
  }

  /** This index seen from the subdirectory `prefix` (slash-separated, "" or "." for the root). */
  below(prefix: string): ContentHashes {
    if (prefix === "" || prefix === ".") return this;
    return { get: (path, stat) => this.get(`${prefix}/${path}`, stat) };
  }
}

/** Collects the entries of a new snapshot's index. */
export class ContentIndexWriter {
  readonly #lines: string[] = [FORMAT];

  /** Adds `path` (a regular file of the snapshot, `stat` its lstat there) with content hash `hex`. */
  add(path: string, stat: BigIntStats, hex: string): void {
    if (!path.includes("\n")) this.#lines.push(`${fileKey(stat)} ${hex} ${path}`);
  }

  /** Adds an entry carried from another index (see `ContentIndex.entry`). */
  addEntry(path: string, entry: string): void {
    if (!path.includes("\n")) this.#lines.push(`${entry} ${path}`);
  }

  /** Writes the index to `file` atomically. */
  async save(file: string): Promise<void> {
    await mkdir(join(file, ".."), { recursive: true });
    const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(temp, `${this.#lines.join("\n")}\n`);
      await rename(temp, file);
    } finally {
      await rm(temp, { force: true });
    }
  }
}

/** Where the content index of snapshot `snapshot` lives under a state directory. */
export function contentIndexFile(stateDir: string, snapshot: string): string {
  return join(stateDir, "content-index", `${snapshot}.txt`);
}

const FORMAT = "kiln-content-index 1";

function fileKey(stat: BigIntStats): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
}
