import { lstatSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync, utimesSync } from "node:fs";
import { dirname } from "node:path";
import { resolveInRoot, splitPath } from "../fs/index.js";

/**
 * Mount points the runtime creates in a rootfs (an empty /etc/hosts, /proc on a scratch tree)
 * are not the RUN's changes. Record which targets are missing before the run, and after it remove
 * those that are still empty stubs, restoring the parent directory's times, so that they never
 * reach a layer (BuildKit's mount-stub cleaner).
 */
export class MountStubs {
  readonly #created: string[] = [];
  readonly #parentTimes = new Map<string, { atime: Date; mtime: Date }>();

  constructor(rootfs: string, targets: readonly string[]) {
    for (const target of targets) {
      const parts = splitPath(target);
      for (let i = 1; i <= parts.length; i++) {
        const host = resolveInRoot(rootfs, `/${parts.slice(0, i).join("/")}`, { followLast: false });
        if (exists(host)) continue;
        // The runtime creates this component and every one below it, down to the target.
        for (let j = i; j <= parts.length; j++) {
          const stub = resolveInRoot(rootfs, `/${parts.slice(0, j).join("/")}`, { followLast: false });
          if (!this.#created.includes(stub)) this.#created.push(stub);
        }
        const parent = dirname(host);
        if (!this.#parentTimes.has(parent)) {
          try {
            const st = statSync(parent);
            this.#parentTimes.set(parent, { atime: st.atime, mtime: st.mtime });
          } catch {
            // The parent is itself a stub; its own parent is recorded.
          }
        }
        break;
      }
    }
  }

  /** Removes stubs that are still empty (deepest first) and restores the parents' times. */
  clean(): void {
    const candidates = [...this.#created].sort((a, b) => b.length - a.length);
    for (const path of candidates) {
      try {
        const st = lstatSync(path);
        if (st.isDirectory() && readdirSync(path).length === 0) rmdirSync(path);
        else if (st.isFile() && st.size === 0) unlinkSync(path);
      } catch {
        // Gone already, or not empty: a real change of the RUN.
      }
    }
    for (const [parent, times] of this.#parentTimes) {
      try {
        utimesSync(parent, times.atime, times.mtime);
      } catch {
        // The parent went away with the run.
      }
    }
  }
}

/** Creates `dir` and its missing parents inside `rootfs` (0755), as BuildKit does for a missing WORKDIR. */
export function ensureDirInRoot(rootfs: string, dir: string): void {
  mkdirSync(resolveInRoot(rootfs, dir), { recursive: true, mode: 0o755 });
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
