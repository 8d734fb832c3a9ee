import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ownerAlive, ownerTag } from "../process-owner.js";
import type { SnapshotId } from "./types.js";

/**
 * Leases: which snapshots a live kiln process is using, so that a prune or garbage collection
 * (this process's or another's on the same state root) never deletes them under a build.
 *
 * One file per process, `<store root>/leases/<owner tag>`, one snapshot id per line, appended
 * (O_APPEND: whole lines, never a torn one) when the process first prepares on, commits, finds or
 * checks a snapshot, and before it uses it; dropped as a whole when the process has no build
 * running (`releaseAll`, so a daemon does not pin all it ever used). A lease file whose owner is dead (worker/process-owner.ts)
 * is ignored and removed by the next sweep. A lease pins the snapshot and, through the sweep's
 * marking, its ancestors.
 */
export class SnapshotLeases {
  readonly #dir: string;
  readonly #file: string;
  readonly #leased = new Set<SnapshotId>();
  /** The lease file, open for appending from the first lease until `releaseAll`: one write per lease. */
  #fd: number | undefined;

  constructor(storeRoot: string) {
    this.#dir = leaseDir(storeRoot);
    this.#file = join(this.#dir, ownerTag());
  }

  /** Leases `id` to this process until it exits (synchronously, so the lease precedes any use). */
  add(id: SnapshotId): void {
    if (this.#leased.has(id)) return;
    if (this.#fd === undefined) {
      mkdirSync(this.#dir, { recursive: true });
      this.#fd = openSync(this.#file, "a");
    }
    // One O_APPEND write of one whole line; nobody else writes this process's file, and only a
    // dead owner's file is removed by others (and `releaseAll` closes before removing).
    writeSync(this.#fd, `${id}\n`);
    this.#leased.add(id);
  }

  /** Ends every lease of this process: only when none of its builds is running. */
  releaseAll(): void {
    if (this.#fd !== undefined) {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
    rmSync(this.#file, { force: true });
    this.#leased.clear();
  }
}

function leaseDir(storeRoot: string): string {
  return join(storeRoot, "leases");
}

/**
 * The snapshot ids leased by live processes on the store at `storeRoot`. Lease files of dead
 * owners are removed; an unreadable file of a live owner is skipped (it is being created).
 */
export async function liveLeases(storeRoot: string): Promise<Set<SnapshotId>> {
  const dir = leaseDir(storeRoot);
  const ids = new Set<SnapshotId>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return ids;
  }
  for (const name of names) {
    if (!ownerAlive(name)) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    let text: string;
    try {
      text = await readFile(join(dir, name), "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) if (line !== "") ids.add(line);
  }
  return ids;
}
