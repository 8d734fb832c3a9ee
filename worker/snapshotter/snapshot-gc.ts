import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { liveLeases } from "./snapshot-leases.js";
import { SnapshotStore } from "./snapshot-store.js";
import type { SnapshotId, SnapshotInfo } from "./types.js";

/** How a snapshot sweep decides. */
export interface SnapshotSweepOptions {
  /** Snapshots something still needs (cache records, images, feature records); their ancestors are kept too. */
  readonly roots: Iterable<SnapshotId>;
  /** Snapshots created less than this many milliseconds ago are kept whatever refers to them... */
  readonly graceMs: number;
  /** ...except these and their ancestors: snapshots that records just deleted named (their build is over). */
  readonly released?: Iterable<SnapshotId>;
  /** The current time (ms since the epoch); default: now. */
  readonly now?: number;
  /** Only report what would be removed. */
  readonly dryRun?: boolean;
}

/** A snapshot the sweep removed (or, dry, would remove). */
export interface SweptSnapshot {
  readonly id: SnapshotId;
  readonly created: number;
}

/**
 * Mark and sweep over the committed snapshots of one store. Marked (kept), each with all its
 * ancestors: the `roots`, the snapshots leased by live processes (snapshot-leases.ts), every
 * active snapshot, and every snapshot younger than the grace period (a build may be about to
 * record it) unless a deleted record `released` it. Every other committed snapshot is removed: record first (from then on it does not
 * exist), then its directory. The leases are read again just before each removal, so a build that
 * leased a snapshot after the marking keeps it. Roots that name missing snapshots are ignored.
 */
export async function sweepSnapshots(store: SnapshotStore, options: SnapshotSweepOptions): Promise<SweptSnapshot[]> {
  const now = options.now ?? Date.now();
  const all = await listSnapshots(store);
  const byId = new Map(all.map((info) => [info.id, info]));
  const marked = new Set<SnapshotId>();
  const mark = (id: SnapshotId): void => {
    for (let current: SnapshotId | null = id; current !== null && !marked.has(current); ) {
      const info = byId.get(current);
      if (info === undefined) return;
      marked.add(current);
      current = info.parent;
    }
  };
  for (const id of options.roots) mark(id);
  for (const id of await liveLeases(store.root)) mark(id);
  const exempt = new Set<SnapshotId>();
  for (const id of options.released ?? []) for (let p: SnapshotId | null = id; p !== null && !exempt.has(p); p = byId.get(p)?.parent ?? null) exempt.add(p);
  for (const info of all) if (info.kind === "active" || (now - info.created < options.graceMs && !exempt.has(info.id))) mark(info.id);

  // Children before parents, so a removed snapshot never strands a half-removed chain.
  const depth = (info: SnapshotInfo): number => {
    let n = 0;
    for (let p = info.parent; p !== null; p = byId.get(p)?.parent ?? null) n++;
    return n;
  };
  const doomed = all.filter((info) => !marked.has(info.id)).sort((a, b) => depth(b) - depth(a));
  const swept: SweptSnapshot[] = [];
  for (const info of doomed) {
    if (options.dryRun !== true) {
      const leased = await liveLeases(store.root);
      if (chainLeased(info.id, leased, all)) continue;
      if (info.chainId !== undefined) await store.forgetChain(info.chainId, info.id);
      await store.deleteRecord(info.id);
      await rm(store.dir(info.id), { recursive: true, force: true });
    }
    swept.push({ id: info.id, created: info.created });
  }
  return swept;
}

/** Whether `id` or a descendant of it is leased. */
function chainLeased(id: SnapshotId, leased: ReadonlySet<SnapshotId>, all: readonly SnapshotInfo[]): boolean {
  if (leased.has(id)) return true;
  return all.some((info) => info.parent === id && chainLeased(info.id, leased, all));
}

/** Every snapshot record of the store (active and committed); unreadable records are skipped. */
export async function listSnapshots(store: SnapshotStore): Promise<SnapshotInfo[]> {
  const infos: SnapshotInfo[] = [];
  for (const name of await readdir(join(store.root, "meta"))) {
    if (!name.endsWith(".json")) continue;
    try {
      const info = await store.tryRead(name.slice(0, -".json".length));
      if (info !== undefined) infos.push(info);
    } catch {
      // A record being replaced or torn by a foreign writer: not ours to judge now.
    }
  }
  return infos;
}

/** The snapshot stores (overlay, native) that exist under a worker's state root. */
export async function openSnapshotStores(stateRoot: string): Promise<SnapshotStore[]> {
  const stores: SnapshotStore[] = [];
  for (const kind of ["overlay", "native"]) {
    const dir = join(stateRoot, "snapshots", kind);
    try {
      await readdir(join(dir, "meta"));
    } catch {
      continue;
    }
    stores.push(await SnapshotStore.open(dir));
  }
  return stores;
}
