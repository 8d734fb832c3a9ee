import { mkdir, rm } from "node:fs/promises";
import { SnapshotStore } from "./snapshot-store.js";
import { createStoreSnapshotter } from "./store-snapshotter.js";
import type { Snapshotter } from "./types.js";
import { inUserNamespace } from "./user-namespace.js";

export interface OverlaySnapshotterOptions {
  /** Mount with `userxattr` (overlay metadata in user.* xattrs). Default: whether we run in a user namespace. */
  readonly userxattr?: boolean;
}

/**
 * Overlay snapshots under `root`: each snapshot's `fs` holds only its own changes (an overlay
 * upperdir), and a chain is seen by stacking those directories as lowerdirs, topmost first. An
 * active snapshot also has a `work` directory (overlay's workdir), removed on commit.
 *
 * Views: `view(id)` of a one-snapshot chain is a read-only bind of its `fs` (overlay needs two
 * lowers for an upper-less mount); longer chains are read-only overlays. The differ relies on the
 * snapshot's own directory being the bind source or the topmost lower.
 */
export async function createOverlaySnapshotter(root: string, options: OverlaySnapshotterOptions = {}): Promise<Snapshotter> {
  const store = await SnapshotStore.open(root);
  const userxattr = options.userxattr ?? inUserNamespace();
  const lowers = (chain: readonly { id: string }[]): string[] => chain.map((s) => store.fsDir(s.id)).reverse();

  return createStoreSnapshotter(store, {
    kind: "overlay",
    async populate(id) {
      await mkdir(store.fsDir(id), { mode: 0o755 });
      await mkdir(store.workDir(id), { mode: 0o700 });
    },
    activeMount(id, parents) {
      if (parents.length === 0) return { kind: "bind", source: store.fsDir(id), readonly: false };
      return { kind: "overlay", lowerdirs: lowers(parents), upperdir: store.fsDir(id), workdir: store.workDir(id), userxattr, readonly: false };
    },
    viewMount(chain) {
      const dirs = lowers(chain);
      if (dirs.length === 1) return { kind: "bind", source: dirs[0] ?? store.emptyDir(), readonly: true };
      return { kind: "overlay", lowerdirs: dirs, userxattr, readonly: true };
    },
    seal(id) {
      // On the thread pool: the workdir holds only empty directories, but right after the unmount
      // their removal takes milliseconds here (volatile's incompat/ entry), which a synchronous
      // call would take from every other step of the build (and the commit does not wait for it).
      return rm(store.workDir(id), { recursive: true, force: true });
    },
  });
}
