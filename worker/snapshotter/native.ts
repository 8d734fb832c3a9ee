import { mkdir } from "node:fs/promises";
import { copyTree } from "./copy-tree.js";
import { SnapshotStore } from "./snapshot-store.js";
import { createStoreSnapshotter } from "./store-snapshotter.js";
import type { Snapshotter } from "./types.js";

/**
 * The copy fallback for where overlay is not allowed: each snapshot's `fs` is a full copy of its
 * parent's tree, then changed in place. `upperdir` is that whole tree, so the differ compares a
 * snapshot with its parent's tree instead of reading an upperdir. Every mount is a plain bind.
 */
export async function createNativeSnapshotter(root: string): Promise<Snapshotter> {
  const store = await SnapshotStore.open(root);
  return createStoreSnapshotter(store, {
    kind: "native",
    async populate(id, parents) {
      await mkdir(store.fsDir(id), { mode: 0o755 });
      const parent = parents.at(-1);
      if (parent !== undefined) await copyTree(store.fsDir(parent.id), store.fsDir(id));
    },
    activeMount: (id) => ({ kind: "bind", source: store.fsDir(id), readonly: false }),
    viewMount: (chain) => ({ kind: "bind", source: store.fsDir((chain.at(-1) as { id: string }).id), readonly: true }),
    async seal() {},
  });
}
