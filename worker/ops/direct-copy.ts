import { lstat } from "node:fs/promises";
import type { CopyAction, FileOp } from "../../solver/llb/index.js";
import { cleanAbsolute, splitPath } from "../fs/index.js";
import type { ActiveSnapshot, SnapshotId, SnapshotMount, Snapshotter } from "../snapshotter/types.js";

/** Unmounted directories a lone COPY can work on: its source tree and the new snapshot's own directory. */
export interface DirectCopyRoots {
  readonly action: CopyAction;
  /** The source snapshot's one directory (its view is a plain bind of it). */
  readonly srcRoot: string;
  /** `active.upperdir`, written directly. */
  readonly destRoot: string;
}

/**
 * Whether the file op `op` (prepared as `active`) can be done without any mount, and on what.
 * Writing a snapshot's own directory directly instead of through its overlay gives the same
 * snapshot when nothing below the destination exists in the base: every entry the copy makes is
 * then new, which is all an overlay upperdir would record. So the fast path needs:
 * - one action, a copy (not ADD's unpack), whose owner, if any, is given by ids (names would be
 *   looked up in the base's /etc/passwd, which is not in the directory written);
 * - a source whose view is one plain directory (a one-snapshot chain, or a native snapshot),
 *   so its files are on the same filesystem as the destination and can be hard-linked;
 * - a destination that is the whole writable tree (native snapshots, or no base), or whose first
 *   path component is in none of the base's directories.
 * Anything else returns undefined and takes the mounted path.
 */
export async function directCopyRoots(
  snapshotter: Snapshotter,
  op: FileOp,
  active: ActiveSnapshot,
  inputId: (index: number | null) => SnapshotId | null,
): Promise<DirectCopyRoots | undefined> {
  const [action, ...rest] = op.actions;
  if (action === undefined || rest.length > 0 || action.kind !== "copy" || action.attemptUnpack) return undefined;
  if (action.owner !== null && (!("id" in action.owner.user) || (action.owner.group !== null && !("id" in action.owner.group)))) return undefined;
  const source = await snapshotter.view(inputId(action.source));
  if (source.kind !== "bind") return undefined;
  if (active.mount.kind !== "bind") {
    const first = splitPath(cleanAbsolute(action.dest))[0];
    if (first === undefined) return undefined;
    const base = await snapshotter.view(inputId(op.base));
    for (const dir of ownDirectories(base)) {
      if ((await lstat(`${dir}/${first}`).catch(() => undefined)) !== undefined) return undefined;
    }
  }
  return { action, srcRoot: source.source, destRoot: active.upperdir };
}

function ownDirectories(mount: SnapshotMount): readonly string[] {
  return mount.kind === "bind" ? [mount.source] : mount.lowerdirs;
}
