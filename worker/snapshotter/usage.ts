import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { SnapshotId, Snapshotter } from "./types.js";

/**
 * Bytes a committed snapshot's own directory takes on disk (allocated blocks, each hardlinked
 * inode once): for the overlay snapshotter its diff from the parent, for the native one its whole
 * tree. Found through `view`, whose bind source or topmost lower is the snapshot's own directory
 * (the contract the differ relies on too). A snapshot that no longer exists uses 0 bytes.
 */
export async function snapshotUsage(snapshotter: Snapshotter, id: SnapshotId): Promise<number> {
  let dir: string | undefined;
  try {
    const view = await snapshotter.view(id);
    dir = view.kind === "bind" ? view.source : view.lowerdirs[0];
  } catch {
    return 0;
  }
  if (dir === undefined) return 0;
  return directoryUsage(dir);
}

/** Bytes the tree at `dir` takes on disk (allocated blocks, each hardlinked inode once); 0 when missing. */
export async function directoryUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (path: string): Promise<void> => {
    let info;
    try {
      info = await lstat(path);
    } catch {
      return;
    }
    const inode = `${info.dev}:${info.ino}`;
    if (seen.has(inode)) return;
    seen.add(inode);
    total += info.blocks * 512;
    if (!info.isDirectory()) return;
    let names: string[];
    try {
      names = await readdir(path);
    } catch {
      return;
    }
    for (const name of names) await walk(join(path, name));
  };
  await walk(dir);
  return total;
}
