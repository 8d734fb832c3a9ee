import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { isDigest, KilnError, type Digest } from "./llb/index.js";
import type { CacheKeyInputs } from "./cache-key.js";
import type { ResultRef } from "./op.js";

/**
 * What the cache knows about one key: the results a vertex with that key produced.
 * `lastUsed` is the later of the time written here and the last `touch`.
 */
export interface CacheRecord {
  readonly results: readonly ResultRef[];
  readonly created: number;
  readonly lastUsed: number;
  readonly vertexName?: string;
  /**
   * What kind of step made it, as `kiln du` shows it: the op kind (`exec`, `file`, `merge`,
   * `diff`) or, for sources, `source.` and the identifier's scheme (`source.docker-image`).
   */
  readonly type?: string;
  /** What the key was computed from, so a later miss can say what changed. */
  readonly keyInputs?: CacheKeyInputs;
  /**
   * Set on an alias record: the key it is stored under is a vertex's definition-based key (inputs
   * by their keys), and this is the vertex's content-based key (inputs by checksum). See README.
   */
  readonly canonicalKey?: Digest;
}

/** One stored record as `list` yields it; `size` is the record file's size in bytes. */
export interface CacheEntry {
  readonly key: Digest;
  readonly record: CacheRecord;
  readonly size: number;
}

/**
 * A persistent map from cache keys to records. Every method is safe to call from several
 * processes on one directory at once; `record` replaces atomically (last writer wins, readers see
 * the old or the new record, never a mix); a record that cannot be read is a miss.
 */
export interface CacheStore {
  load(key: Digest): Promise<CacheRecord | undefined>;
  record(key: Digest, record: CacheRecord): Promise<void>;
  /** Marks a record used at `time` (default now); a missing record is ignored. */
  touch(key: Digest, time?: number): Promise<void>;
  /** Removes a record; false when there was none. */
  delete(key: Digest): Promise<boolean>;
  /** Every readable record, in no particular order. */
  list(): AsyncIterable<CacheEntry>;
}

/** The cache directory holds a format this kiln cannot read. */
export class CacheStoreFormatError extends KilnError {
  constructor(dir: string, found: string) {
    super("KILN_CACHE_FORMAT", `Cannot open cache store "${dir}": it has format "${found}", this kiln reads "${FORMAT}"`);
  }
}

const FORMAT = "kiln-cache-v1";
/** Temp files of dead writers are removed on open; so are any older than this (pid reuse). */
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/**
 * Opens (creating when needed) the cache store in `dir`. Layout:
 *
 *     dir/format                  "kiln-cache-v1"
 *     dir/records/ab/abcd….json   one record per key, sharded by the first two hex digits
 *     dir/tmp/<hex>.<pid>.<rand>  records being written
 *
 * Opening removes temp files left by writers that died (SIGKILL) before renaming them.
 */
export async function openCacheStore(dir: string): Promise<CacheStore> {
  await mkdir(join(dir, "records"), { recursive: true });
  await mkdir(join(dir, "tmp"), { recursive: true });
  await checkFormat(dir);
  await removeStaleTemps(join(dir, "tmp"));
  return new FileCacheStore(dir);
}

class FileCacheStore implements CacheStore {
  readonly #records: string;
  readonly #tmp: string;

  constructor(dir: string) {
    this.#records = join(dir, "records");
    this.#tmp = join(dir, "tmp");
  }

  async load(key: Digest): Promise<CacheRecord | undefined> {
    // Synchronous: a record is a few hundred bytes in the page cache, and open + fstat + read +
    // close cost less inline than four trips through libuv's thread pool (a cached build does
    // one lookup per step). The fstat is of the file read, so text and mtime are of one file.
    let fd: number;
    try {
      fd = openSync(this.#path(key), "r");
    } catch (error) {
      if (isErrno(error, "ENOENT")) return undefined;
      throw error;
    }
    try {
      const mtimeMs = fstatSync(fd).mtimeMs;
      const record = parseRecord(readFileSync(fd, "utf8"), key);
      return record === undefined ? undefined : { ...record, lastUsed: Math.max(record.lastUsed, Math.floor(mtimeMs)) };
    } finally {
      closeSync(fd);
    }
  }

  async record(key: Digest, record: CacheRecord): Promise<void> {
    const path = this.#path(key);
    const hex = key.slice("sha256:".length);
    const temp = join(this.#tmp, `${hex}.${process.pid}.${randomBytes(6).toString("hex")}`);
    const text = JSON.stringify({ format: FORMAT, key, ...record });
    try {
      await writeDurably(temp, text, record.lastUsed);
      try {
        await rename(temp, path);
      } catch (error) {
        if (!isErrno(error, "ENOENT")) throw error;
        await mkdir(join(this.#records, hex.slice(0, 2)), { recursive: true });
        await rename(temp, path);
      }
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    // No directory fsync: after a power loss the rename may be lost, which is a miss (the work
    // is redone), never a wrong answer. The record's own bytes are synced before the rename, so
    // the name never points at torn data.
  }

  async touch(key: Digest, time: number = Date.now()): Promise<void> {
    // lastUsed lives in the file's mtime: an in-place metadata update, no rewrite, no torn data.
    try {
      await utimes(this.#path(key), time / 1000, time / 1000);
    } catch (error) {
      if (!isErrno(error, "ENOENT")) throw error;
    }
  }

  async delete(key: Digest): Promise<boolean> {
    try {
      await unlink(this.#path(key));
      return true;
    } catch (error) {
      if (isErrno(error, "ENOENT")) return false;
      throw error;
    }
  }

  async *list(): AsyncIterable<CacheEntry> {
    for (const shard of await readdir(this.#records)) {
      let names: string[];
      try {
        names = await readdir(join(this.#records, shard));
      } catch (error) {
        if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) continue;
        throw error;
      }
      for (const name of names) {
        if (!name.endsWith(".json")) continue;
        const key = `sha256:${name.slice(0, -".json".length)}`;
        if (!isDigest(key)) continue;
        const path = join(this.#records, shard, name);
        try {
          const [text, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
          const record = parseRecord(text, key);
          if (record === undefined) continue;
          yield { key, record: { ...record, lastUsed: Math.max(record.lastUsed, Math.floor(info.mtimeMs)) }, size: info.size };
        } catch (error) {
          if (!isErrno(error, "ENOENT")) throw error;
        }
      }
    }
  }

  #path(key: Digest): string {
    if (!isDigest(key)) throw new TypeError(`Cannot use cache key "${String(key)}": expected a sha256 digest`);
    const hex = key.slice("sha256:".length);
    return join(this.#records, hex.slice(0, 2), `${hex}.json`);
  }
}

/** Parses a record file; undefined for anything torn, foreign or misplaced (treated as a miss). */
function parseRecord(text: string, key: Digest): CacheRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v["format"] !== FORMAT || v["key"] !== key) return undefined;
  const results = v["results"];
  if (!Array.isArray(results) || !results.every((r) => typeof r === "object" && r !== null && typeof (r as ResultRef).id === "string")) {
    return undefined;
  }
  if (typeof v["created"] !== "number" || typeof v["lastUsed"] !== "number") return undefined;
  const vertexName = v["vertexName"];
  const type = v["type"];
  const canonicalKey = v["canonicalKey"];
  const keyInputs = v["keyInputs"];
  if (vertexName !== undefined && typeof vertexName !== "string") return undefined;
  if (type !== undefined && typeof type !== "string") return undefined;
  if (canonicalKey !== undefined && (typeof canonicalKey !== "string" || !isDigest(canonicalKey))) return undefined;
  if (keyInputs !== undefined && !isKeyInputs(keyInputs)) return undefined;
  return {
    results: (results as ResultRef[]).map((r) => ({ ...r })),
    created: v["created"],
    lastUsed: v["lastUsed"],
    ...(vertexName === undefined ? {} : { vertexName }),
    ...(type === undefined ? {} : { type }),
    ...(canonicalKey === undefined ? {} : { canonicalKey }),
    ...(keyInputs === undefined ? {} : { keyInputs }),
  };
}

function isKeyInputs(value: unknown): value is CacheKeyInputs {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v["digest"] === "string" && Array.isArray(v["deps"]);
}

/** Writes a new file and syncs it; `mtime` (ms) is set first, so it survives the later rename. */
async function writeDurably(path: string, text: string, mtime?: number): Promise<void> {
  const handle = await open(path, "wx", 0o644);
  try {
    await handle.writeFile(text);
    if (mtime !== undefined) await handle.utimes(mtime / 1000, mtime / 1000);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function checkFormat(dir: string): Promise<void> {
  const path = join(dir, "format");
  try {
    const found = (await readFile(path, "utf8")).trim();
    if (found !== FORMAT) throw new CacheStoreFormatError(dir, found);
    return;
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
  }
  // Two processes may both get here; both write the same bytes, and rename makes either win whole.
  const temp = join(dir, "tmp", `format.${process.pid}.${randomBytes(6).toString("hex")}`);
  await writeDurably(temp, `${FORMAT}\n`);
  await rename(temp, path);
}

async function removeStaleTemps(tmp: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(tmp)) {
    const pid = Number(name.split(".")[1]);
    const path = join(tmp, name);
    try {
      const stale = !Number.isInteger(pid) || !processAlive(pid) || now - (await stat(path)).mtimeMs > STALE_TEMP_MS;
      if (stale) await unlink(path);
    } catch (error) {
      if (!isErrno(error, "ENOENT")) throw error;
    }
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !isErrno(error, "ESRCH");
  }
}

function isErrno(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as NodeJS.ErrnoException).code === code;
}
