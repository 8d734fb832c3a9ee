import type { BigIntStats } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Remembers the content hash of files by path and stat (device, inode, size, mtime and ctime to
 * the nanosecond), so a tree whose files did not change is re-checksummed by a stat walk alone
 * (git's index trick). Kept in one JSON file, replaced atomically (temp + rename) by `save()`.
 * A file modified within `racyMs` of being hashed is not remembered: a write in the same
 * timestamp tick could otherwise leave a stale hash behind.
 */
export class StatCache {
  readonly #file: string;
  #entries = new Map<string, string>();
  readonly #next = new Map<string, string>();
  readonly #racyMs: number;

  private constructor(file: string, racyMs: number) {
    this.#file = file;
    this.#racyMs = racyMs;
  }

  /** Loads the cache file (a missing or unreadable one starts empty). `racyMs` defaults to RACY_MS. */
  static async open(file: string, options: { racyMs?: number } = {}): Promise<StatCache> {
    const cache = new StatCache(file, options.racyMs ?? RACY_MS);
    try {
      const data = JSON.parse(await readFile(file, "utf8")) as Record<string, string>;
      cache.#entries = new Map(Object.entries(data));
    } catch {
      // Starts empty.
    }
    return cache;
  }

  /** The remembered hash of `path` if its stat is unchanged. */
  get(path: string, stat: BigIntStats): string | undefined {
    const entry = this.#entries.get(path);
    if (entry === undefined) return undefined;
    const [key, hash] = entry.split(" ");
    if (key !== statKey(stat) || hash === undefined) return undefined;
    this.#next.set(path, entry);
    return hash;
  }

  /** Records `hash` for `path` as it is now. */
  set(path: string, stat: BigIntStats, hash: string): void {
    if (Date.now() - Number(stat.mtimeMs) < this.#racyMs || Date.now() - Number(stat.ctimeMs) < this.#racyMs) return;
    this.#next.set(path, `${statKey(stat)} ${hash}`);
  }

  /** Writes what this walk saw (entries of paths that are gone are dropped). */
  async save(): Promise<void> {
    await mkdir(dirname(this.#file), { recursive: true });
    const temp = `${this.#file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, JSON.stringify(Object.fromEntries(this.#next)));
    await rename(temp, this.#file);
  }
}

/** Files changed this recently are hashed but not remembered. */
export const RACY_MS = 2000;

function statKey(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}
