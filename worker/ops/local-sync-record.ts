import type { BigIntStats } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { SnapshotId } from "../snapshotter/types.js";

/**
 * What the last run of one local source (one directory, one selection) put in its snapshot: the
 * snapshot id and, per regular file, the stat of the context file it was copied from (device,
 * inode, size, mtime and ctime to the nanosecond, mode). The next run hard-links every file whose
 * context stat is unchanged from that snapshot instead of copying it again, so a context where one
 * file changed costs a stat walk and a link per file, as BuildKit's incremental sync into its
 * per-context directory does. A file changed within `racyMs` of being copied is not remembered
 * (a write in the same timestamp tick could otherwise go unnoticed). One JSON file, replaced
 * atomically; a missing or unreadable one means "copy everything".
 */
export class LocalSyncRecord {
  readonly #file: string;
  readonly #racyMs: number;
  readonly #previous: ReadonlyMap<string, string>;
  readonly #next = new Map<string, string>();
  /** The snapshot the previous run made, if any. */
  readonly snapshot: SnapshotId | undefined;

  private constructor(file: string, racyMs: number, snapshot: SnapshotId | undefined, previous: ReadonlyMap<string, string>) {
    this.#file = file;
    this.#racyMs = racyMs;
    this.snapshot = snapshot;
    this.#previous = previous;
  }

  static async open(file: string, options: { racyMs?: number } = {}): Promise<LocalSyncRecord> {
    const racyMs = options.racyMs ?? 2000;
    try {
      const data = JSON.parse(await readFile(file, "utf8")) as { snapshot?: unknown; files?: unknown };
      if (typeof data.snapshot === "string" && typeof data.files === "object" && data.files !== null) {
        return new LocalSyncRecord(file, racyMs, data.snapshot, new Map(Object.entries(data.files as Record<string, string>)));
      }
    } catch {
      // Starts empty.
    }
    return new LocalSyncRecord(file, racyMs, undefined, new Map());
  }

  /** Whether the previous snapshot's `path` came from a context file with exactly this stat (`key`: its statKey). */
  unchanged(path: string, key: string): boolean {
    return this.#previous.get(path) === key;
  }

  /**
   * Records that the new snapshot's `path` holds the context file with this stat (unless it
   * changed too recently to trust); `key` is its statKey, when the caller has it already.
   */
  set(path: string, stat: BigIntStats, key: string = statKey(stat)): void {
    if (this.#now - Number(stat.mtimeMs) < this.#racyMs || this.#now - Number(stat.ctimeMs) < this.#racyMs) return;
    this.#next.set(path, key);
  }

  /**
   * The time the racy check compares with, read once per record: a run lasts seconds at most, and
   * an earlier "now" only makes more files count as too recent.
   */
  readonly #now = Date.now();

  /** Writes the record of the new snapshot `snapshot`. */
  async save(snapshot: SnapshotId): Promise<void> {
    await mkdir(dirname(this.#file), { recursive: true });
    const temp = `${this.#file}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(temp, JSON.stringify({ snapshot, files: Object.fromEntries(this.#next) }));
      await rename(temp, this.#file);
    } finally {
      await rm(temp, { force: true });
    }
  }
}

/** The stat of a context file, as far as its copy's content and metadata depend on it. */
export function statKey(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}:${stat.mode}`;
}
