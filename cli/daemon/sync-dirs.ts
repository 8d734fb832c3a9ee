import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";

/** A sync directory lent to one build. */
export interface SyncLease {
  readonly dir: string;
  /** False for a throwaway copy (its key was busy): it is removed on release. */
  readonly kept: boolean;
  release(): Promise<void>;
}

const TEMP_PREFIX = "tmp-";

/**
 * The daemon's kept context copies, one directory per sync key under `base`, at most `limit` of
 * them: taking one marks it used (its directory mtime), and the least recently used beyond the
 * limit are removed. A key is never lent to two builds at once: while one build holds it, a
 * second build with the same key gets a throwaway directory (a full sync) instead of waiting.
 */
export class SyncDirs {
  readonly #base: string;
  readonly #limit: number;
  readonly #busy = new Set<string>();

  constructor(base: string, limit: number) {
    this.#base = base;
    this.#limit = Math.max(1, limit);
  }

  /** Creates `base` and removes throwaway directories a stopped daemon left. */
  async init(): Promise<void> {
    await mkdir(this.#base, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.#base)) {
      if (name.startsWith(TEMP_PREFIX)) await rm(join(this.#base, name), { recursive: true, force: true });
    }
  }

  async acquire(key: string): Promise<SyncLease> {
    // The client's key names the directory only through a hash: it can hold nothing path-like.
    const name = createHash("sha256").update(key).digest("hex").slice(0, 32);
    if (this.#busy.has(name)) {
      const dir = await mkdtemp(join(this.#base, TEMP_PREFIX));
      return { dir, kept: false, release: () => rm(dir, { recursive: true, force: true }) };
    }
    this.#busy.add(name);
    const dir = join(this.#base, name);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const now = new Date();
      await utimes(dir, now, now);
      await this.#evict(name);
    } catch (error) {
      this.#busy.delete(name);
      throw error;
    }
    let released = false;
    return {
      dir,
      kept: true,
      release: async () => {
        if (released) return;
        released = true;
        this.#busy.delete(name);
      },
    };
  }

  /** Removes the least recently used kept directories beyond the limit (never one in use). */
  async #evict(current: string): Promise<void> {
    const idle: { name: string; used: number }[] = [];
    let inUse = 0;
    for (const name of await readdir(this.#base)) {
      if (name.startsWith(TEMP_PREFIX)) continue;
      if (this.#busy.has(name) || name === current) {
        inUse++;
        continue;
      }
      const used = await stat(join(this.#base, name)).then((s) => s.mtimeMs, () => undefined);
      if (used !== undefined) idle.push({ name, used });
    }
    // Directories in use count against the limit but are never removed.
    idle.sort((a, b) => b.used - a.used);
    for (const { name } of idle.slice(Math.max(0, this.#limit - inUse))) await rm(join(this.#base, name), { recursive: true, force: true });
  }
}
