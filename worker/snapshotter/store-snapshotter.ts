import { mkdir, rm } from "node:fs/promises";
import { ownerAlive, ownerTag } from "../process-owner.js";
import { SnapshotLeases } from "./snapshot-leases.js";
import { SnapshotError } from "./errors.js";
import type { SnapshotStore } from "./snapshot-store.js";
import type { ActiveSnapshot, CommitOptions, SnapshotId, SnapshotInfo, SnapshotMount, Snapshotter } from "./types.js";

/** What differs between snapshotter kinds: how a snapshot's directories are made and seen. */
export interface SnapshotLayout {
  readonly kind: Snapshotter["kind"];
  /** Fills the new active snapshot's directory (`store.dir(id)` exists); `parents` is base first, empty for none. */
  populate(id: SnapshotId, parents: readonly SnapshotInfo[]): Promise<void>;
  /** The writable view of an active snapshot. */
  activeMount(id: SnapshotId, parents: readonly SnapshotInfo[]): SnapshotMount;
  /** The read-only view of a committed chain (base first, never empty). */
  viewMount(chain: readonly SnapshotInfo[]): SnapshotMount;
  /** Drops what only an active snapshot needs (overlay's workdir); a commit does not wait for it. */
  seal(id: SnapshotId): Promise<void>;
}

/**
 * The Snapshotter contract over a SnapshotStore and a layout. The metadata record is the commit
 * point: a snapshot whose record says "committed" has a complete directory, because the record
 * is renamed into place only after the directory is done.
 */
export function createStoreSnapshotter(store: SnapshotStore, layout: SnapshotLayout): Snapshotter {
  // What this process uses is leased before use, so a concurrent prune leaves it (snapshot-leases.ts).
  const leases = new SnapshotLeases(store.root);
  const parentsOf = async (parent: SnapshotId | null): Promise<SnapshotInfo[]> => {
    if (parent === null) return [];
    leases.add(parent);
    await store.readCommitted(parent, "prepare a snapshot on");
    return store.chain(parent);
  };

  return {
    kind: layout.kind,

    async prepare(parent) {
      const parents = await parentsOf(parent);
      const id = store.newId();
      leases.add(id);
      const info: SnapshotInfo = { id, parent, kind: "active", created: Date.now() };
      // Marked before anything exists, so a SIGKILL at any point leaves a mark recovery follows.
      await store.markActive(id, ownerTag());
      await mkdir(store.dir(id), { recursive: true });
      try {
        await layout.populate(id, parents);
        await store.write(info);
      } catch (error) {
        await rm(store.dir(id), { recursive: true, force: true });
        await store.clearActive(id);
        throw error;
      }
      return { id, parent, upperdir: store.fsDir(id), mount: layout.activeMount(id, parents) } satisfies ActiveSnapshot;
    },

    async commit(active, options: CommitOptions = {}) {
      const info = await store.read(active.id);
      if (info.kind !== "active") throw new SnapshotError("KILN_SNAPSHOT_STATE", `Cannot commit snapshot "${active.id}": it is already committed`);
      const committed: SnapshotInfo = {
        ...info,
        kind: "committed",
        ...(options.blob === undefined ? {} : { blob: options.blob }),
        ...(options.chainId === undefined ? {} : { chainId: options.chainId }),
      };
      // The seal drops only what the active snapshot needed (never content), so the commit does
      // not wait for it: right after an unmount, removing overlay's workdir takes milliseconds
      // here, which every step of a build paid. A pending removal keeps the process alive until
      // it is done; one cut short by a crash leaves empty directories in a committed snapshot,
      // which nothing reads and its removal takes with it.
      void layout.seal(active.id).catch(() => {});
      await store.write(committed);
      if (options.chainId !== undefined) await store.recordChain(options.chainId, active.id);
      await store.clearActive(active.id);
      return active.id;
    },

    async abort(active) {
      const info = await store.tryRead(active.id);
      if (info?.kind === "committed") throw new SnapshotError("KILN_SNAPSHOT_STATE", `Cannot abort snapshot "${active.id}": it is already committed`);
      await store.deleteRecord(active.id);
      await rm(store.dir(active.id), { recursive: true, force: true });
      await store.clearActive(active.id);
    },

    async view(id) {
      if (id === null) return { kind: "bind", source: store.emptyDir(), readonly: true };
      await store.readCommitted(id, "view");
      return layout.viewMount(await store.chain(id));
    },

    info: (id) => store.read(id),

    async exists(id) {
      // The solver's liveness check of a cache hit: from here on the build relies on it.
      if (/^[0-9a-f]{32}$/.test(id)) leases.add(id);
      return (await store.tryRead(id)) !== undefined;
    },

    chain: (id) => {
      leases.add(id);
      return store.chain(id);
    },

    setBlob: (id, blob) => store.setBlob(id, blob),

    async findChain(chainId) {
      const id = await store.findChain(chainId);
      if (id === undefined) return undefined;
      leases.add(id);
      // Found before the lease: it may have been swept in between.
      return (await store.tryRead(id)) === undefined ? undefined : id;
    },

    async remove(id) {
      const info = await store.readCommitted(id, "remove");
      const children = await store.children(id);
      if (children.length > 0) {
        throw new SnapshotError("KILN_SNAPSHOT_IN_USE", `Cannot remove snapshot "${id}": ${children.length} snapshot(s) use it as parent ("${children.join('", "')}")`);
      }
      if (info.chainId !== undefined) await store.forgetChain(info.chainId, id);
      await store.deleteRecord(id);
      await rm(store.dir(id), { recursive: true, force: true });
    },

    releaseLeases() {
      leases.releaseAll();
    },
  };
}

/**
 * Start-up recovery: discards the active snapshots of processes that died (SIGKILL, power loss)
 * before committing or aborting them. A mark whose snapshot was committed just before the crash
 * is only cleared. The caller must first unmount whatever used those snapshots (their exec
 * mounts), or the removal would pull directories from under a live overlay. Returns the ids removed.
 */
export async function removeStaleActiveSnapshots(store: SnapshotStore): Promise<SnapshotId[]> {
  const removed: SnapshotId[] = [];
  for (const { id, owner } of await store.listActive()) {
    if (ownerAlive(owner)) continue;
    const info = await store.tryRead(id);
    if (info?.kind !== "committed") {
      await store.deleteRecord(id);
      await rm(store.dir(id), { recursive: true, force: true });
      removed.push(id);
    }
    await store.clearActive(id);
  }
  return removed;
}
