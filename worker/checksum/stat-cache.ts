import type { BigIntStats } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parseRecordLines } from "./record-lines.js";

/**
 * Remembers the content hash of files by path and stat (device, inode, size, mtime and ctime to
 * the nanosecond), so a tree whose files did not change is re-checksummed by a stat walk alone
 * (git's index trick). A file modified within `racyMs` of being hashed is not remembered: a write
 * in the same timestamp tick could otherwise leave a stale hash behind.
 *
 * Kept in one line-oriented file, replaced atomically (temp + rename) by `save()`, and only
 * when this walk saw something different from what was loaded: the first line is FORMAT, then
 * one line per file, `<stat key> <hex sha256> <path>` (paths holding a newline are not
 * remembered; they are hashed each time). A missing, unreadable or foreign file starts empty.
 */
export class StatCache {
  readonly #file: string;
  #entries = new Map<string, string>();
  readonly #next = new Map<string, string>();
  readonly #racyMs: number;
  /** A `get` missed or a `set` wrote something else than was loaded. */
  #dirty = false;

  private constructor(file: string, racyMs: number) {
    this.#file = file;
    this.#racyMs = racyMs;
  }

  /** Loads the cache file (a missing or unreadable one starts empty). `racyMs` defaults to RACY_MS. */
  static async open(file: string, options: { racyMs?: number } = {}): Promise<StatCache> {
    const cache = new StatCache(file, options.racyMs ?? RACY_MS);
    try {
      cache.#entries = parseRecordLines(await readFile(file, "utf8"), FORMAT);
    } catch {
      // Starts empty.
    }
    return cache;
  }

  /** The remembered hash of `path` if its stat is unchanged. */
  get(path: string, stat: BigIntStats): string | undefined {
    const entry = this.#entries.get(path);
    if (entry === undefined) return undefined;
    // `<stat key> <hash>` (a rebuild of a large context makes one call per file): the separator
    // is checked first, then the key as one string comparison, which V8 does faster than
    // startsWith with a freshly built key.
    const key = statKey(stat);
    if (entry.charCodeAt(key.length) !== SPACE || entry.slice(0, key.length) !== key) {
      this.#dirty = true;
      return undefined;
    }
    this.#next.set(path, entry);
    return entry.slice(key.length + 1);
  }

  /** Records `hash` for `path` as it is now. */
  set(path: string, stat: BigIntStats, hash: string): void {
    if (path.includes("\n")) return;
    if (Date.now() - Number(stat.mtimeMs) < this.#racyMs || Date.now() - Number(stat.ctimeMs) < this.#racyMs) return;
    const entry = `${statKey(stat)} ${hash}`;
    if (this.#entries.get(path) !== entry) this.#dirty = true;
    this.#next.set(path, entry);
  }

  /**
   * Whether `save()` would write anything: this walk's entries differ from the loaded ones. Every
   * entry of `next` came from a hit of `get` (the loaded entry itself) or from `set` (which marks
   * a difference), so equal sizes and no mark mean equal maps.
   */
  get changed(): boolean {
    return this.#dirty || this.#next.size !== this.#entries.size;
  }

  /** Writes what this walk saw (entries of paths that are gone are dropped), unless nothing changed. */
  async save(): Promise<void> {
    if (!this.changed) return;
    await mkdir(dirname(this.#file), { recursive: true });
    const temp = `${this.#file}.${process.pid}.${Date.now()}.tmp`;
    const lines = [FORMAT];
    for (const [path, entry] of this.#next) lines.push(`${entry} ${path}`);
    try {
      await writeFile(temp, `${lines.join("\n")}\n`);
      await rename(temp, this.#file);
    } finally {
      await rm(temp, { force: true });
    }
    this.#entries = new Map(this.#next);
    this.#dirty = false;
  }
}

const SPACE = 0x20;

/** Files changed this recently are hashed but not remembered. */
export const RACY_MS = 2000;

/** The first line of a stat cache file; another first line (an older format) reads as empty. */
const FORMAT = "kiln-stat-cache 1";

function statKey(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}
