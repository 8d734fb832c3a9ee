import { mkdtemp, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertNever } from "../../solver/llb/index.js";
import { ownerTag } from "../process-owner.js";
import { mount, MountFlags, mountOverlay, SyscallError, unmount } from "../syscalls.js";
import type { SnapshotMount } from "./types.js";

/**
 * Mounts a snapshot at `target` (an existing directory). A read-only bind is a bind followed by a
 * read-only remount, because the kernel ignores MS_RDONLY on the first bind call. The caller owns
 * the mount and unmounts it with `unmountSnapshot`.
 */
export function mountSnapshot(snapshot: SnapshotMount, target: string): void {
  switch (snapshot.kind) {
    case "overlay":
      mountOverlay(target, {
        lowerdirs: snapshot.lowerdirs,
        ...(snapshot.upperdir === undefined ? {} : { upperdir: snapshot.upperdir }),
        ...(snapshot.workdir === undefined ? {} : { workdir: snapshot.workdir }),
        userxattr: snapshot.userxattr,
        readonly: snapshot.readonly,
      });
      return;
    case "bind":
      mount(snapshot.source, target, null, MountFlags.BIND | MountFlags.REC);
      if (snapshot.readonly) {
        try {
          mount("none", target, null, MountFlags.BIND | MountFlags.REMOUNT | MountFlags.RDONLY);
        } catch (error) {
          unmount(target, { detach: true });
          throw error;
        }
      }
      return;
    default:
      assertNever(snapshot);
  }
}

/** Unmounts what `mountSnapshot` mounted; falls back to a lazy detach when the mount is busy. */
export function unmountSnapshot(target: string): void {
  try {
    unmount(target);
  } catch (error) {
    if (error instanceof SyscallError && error.errnoCode === "EBUSY") unmount(target, { detach: true });
    else throw error;
  }
}

/**
 * Mounts the snapshot on a fresh temp directory, runs `fn` with it, and always unmounts and
 * removes the directory afterwards, whether `fn` resolves or throws.
 */
export async function withMountedSnapshot<T>(snapshot: SnapshotMount, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `kiln-mnt-${ownerTag()}-`));
  try {
    mountSnapshot(snapshot, dir);
  } catch (error) {
    await rmdir(dir);
    throw error;
  }
  try {
    return await fn(dir);
  } finally {
    unmountSnapshot(dir);
    await rmdir(dir);
  }
}
