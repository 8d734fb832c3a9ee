import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { copyTree } from "../worker/snapshotter/copy-tree.js";
import { withMountedSnapshot } from "../worker/snapshotter/mount.js";
import type { SnapshotMount } from "../worker/snapshotter/types.js";

export interface LocalOutputOptions {
  /** The directory to write the filesystem into; created when missing. */
  readonly dest: string;
  readonly signal?: AbortSignal;
}

/**
 * Writes a build result's final filesystem into a directory, as BuildKit's `type=local` exporter
 * does: `view` is the result snapshot's read-only view (null: an empty filesystem, `FROM scratch`
 * with nothing added). Owners, modes, times, xattrs, hard links, symlinks, devices and fifos are
 * kept (owners need root, or a user namespace that maps them). The tree is copied into a temp
 * directory beside `dest` first, then each top-level entry is moved into `dest`, replacing an
 * entry of the same name, so a failed copy leaves `dest` as it was; entries of `dest` that the
 * result lacks stay, and `dest`'s own owner and mode are not changed.
 */
export async function writeLocalOutput(view: SnapshotMount | null, options: LocalOutputOptions): Promise<void> {
  const dest = options.dest;
  await mkdir(dirname(dest), { recursive: true });
  const temp = join(dirname(dest), `.${basename(dest)}.kiln-${randomBytes(6).toString("hex")}`);
  await mkdir(temp, { mode: 0o700 });
  try {
    if (view !== null) await withMountedSnapshot(view, (root) => copyTree(root, temp));
    options.signal?.throwIfAborted();
    await mkdir(dest, { recursive: true });
    for (const name of await readdir(temp)) {
      await rm(join(dest, name), { recursive: true, force: true });
      await rename(join(temp, name), join(dest, name));
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
