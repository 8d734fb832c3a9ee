import { chmod, chown, cp, mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { KilnError, sha256, type CacheMount, type CacheSharing } from "../../solver/llb/index.js";
import { resolveInRoot } from "../fs/index.js";

/** A RUN mount kiln cannot provide (a secret or ssh agent the build was not given). */
export class ExecMountError extends KilnError {
  constructor(message: string) {
    super("KILN_EXEC_MOUNT_UNAVAILABLE", message);
  }
}

/** A cache mount directory held for one RUN; `release()` must be called when the RUN ends. */
export interface CacheMountLease {
  readonly dir: string;
  release(): void;
}

/**
 * The directory name of cache id `id` under a CacheMounts root (a `private` mount's extra
 * instances are `NAME-1`, `NAME-2`…). Cache export and import (`exporter/cache/`) use it to find a
 * cache mount by id; the worker keeps its cache mounts in `<state root>/executor/cache-mounts`.
 */
export function cacheMountName(id: string): string {
  return sha256(`cache-mount:${id}`).slice("sha256:".length, "sha256:".length + 32);
}

/**
 * Persistent `RUN --mount=type=cache` directories under `root`, one per cache id (named by a
 * hash of the id, so any id is a safe file name). Sharing, as BuildKit:
 * - `shared`: every RUN uses the same directory at the same time;
 * - `locked`: RUNs using the id wait for each other (within this process);
 * - `private`: a RUN that finds the directory busy gets another persistent instance of it.
 * A directory made for the first time gets the mount's mode (default 0755) and owner (default
 * 0:0), and the content of `seed` (the `from` option) when given.
 */
export class CacheMounts {
  readonly #root: string;
  readonly #busy = new Map<string, number>();
  readonly #locks = new Map<string, Promise<void>>();

  constructor(root: string) {
    this.#root = root;
  }

  async acquire(mount: CacheMount, seed: string | undefined, signal: AbortSignal): Promise<CacheMountLease> {
    const base = cacheMountName(mount.id);
    const sharing: CacheSharing = mount.sharing;
    let name = base;
    let unlock = () => {};
    switch (sharing) {
      case "shared":
        break;
      case "locked": {
        const previous = this.#locks.get(base) ?? Promise.resolve();
        let release!: () => void;
        const mine = new Promise<void>((resolve) => (release = resolve));
        const chained = previous.then(() => mine);
        this.#locks.set(base, chained);
        await Promise.race([previous, abortPromise(signal)]).catch((error: unknown) => {
          release();
          throw error;
        });
        unlock = () => {
          release();
          if (this.#locks.get(base) === chained) this.#locks.delete(base);
        };
        break;
      }
      case "private": {
        for (let n = 0; (this.#busy.get(name) ?? 0) > 0; n++) name = `${base}-${n + 1}`;
        break;
      }
    }
    this.#busy.set(name, (this.#busy.get(name) ?? 0) + 1);
    const dir = join(this.#root, name);
    try {
      await this.#create(dir, mount, seed);
    } catch (error) {
      this.#release(name);
      unlock();
      throw error;
    }
    let released = false;
    return {
      dir,
      release: () => {
        if (released) return;
        released = true;
        this.#release(name);
        unlock();
      },
    };
  }

  #release(name: string): void {
    const count = (this.#busy.get(name) ?? 1) - 1;
    if (count <= 0) this.#busy.delete(name);
    else this.#busy.set(name, count);
  }

  async #create(dir: string, mount: CacheMount, seed: string | undefined): Promise<void> {
    try {
      await readdir(dir);
      return;
    } catch {
      // Not made yet.
    }
    await mkdir(this.#root, { recursive: true, mode: 0o700 });
    const staging = `${dir}.new-${process.pid}-${Date.now()}`;
    await mkdir(staging, { mode: 0o755 });
    try {
      if (seed !== undefined) await cp(seed, staging, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true, force: true });
      await chmod(staging, mount.mode ?? 0o755);
      await chown(staging, mount.uid ?? 0, mount.gid ?? 0);
      await rename(staging, dir);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      // Another RUN made it first: use theirs.
      if ((error as NodeJS.ErrnoException).code === "ENOTEMPTY" || (error as NodeJS.ErrnoException).code === "EEXIST") return;
      throw error;
    }
  }
}

/** The host path of `selector` inside a mounted tree (symlinks resolved inside it). */
export function selectInTree(dir: string, selector: string): string {
  return selector === "" || selector === "/" ? dir : resolveInRoot(dir, selector);
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
