import { rmSync } from "node:fs";
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
 *
 * A writable overlay is mounted `volatile` where the kernel has it: unmounting a plain overlay
 * syncs the whole filesystem under it, which took 3 ms to 150 ms per RUN and per file step on a
 * busy machine, and syncs inside a RUN (dpkg's many fsyncs) cost as much. What kiln promises, a
 * consistent state after the process is killed at any instant, holds: a SIGKILL loses nothing
 * from the page cache. What this gives up is power-loss durability of the last seconds' snapshots
 * (their files may come back empty, as with any data the kernel had not written back yet).
 */
export function mountSnapshot(snapshot: SnapshotMount, target: string): void {
  switch (snapshot.kind) {
    case "overlay": {
      const options = {
        lowerdirs: snapshot.lowerdirs,
        ...(snapshot.upperdir === undefined ? {} : { upperdir: snapshot.upperdir }),
        ...(snapshot.workdir === undefined ? {} : { workdir: snapshot.workdir }),
        userxattr: snapshot.userxattr,
        readonly: snapshot.readonly,
      };
      if (snapshot.upperdir === undefined || snapshot.workdir === undefined) {
        mountOverlay(target, options);
        return;
      }
      // A previous volatile mount of this snapshot by this process (unmounted cleanly, or it
      // would not be mountable here) leaves this mark; the kernel refuses to mount until it goes.
      rmSync(join(snapshot.workdir, "work", "incompat"), { recursive: true, force: true });
      try {
        mountOverlay(target, { ...options, volatile: true });
      } catch (error) {
        // A kernel before 5.10 does not know the option: mount as before.
        if (!(error instanceof SyscallError && error.errnoCode === "EINVAL")) throw error;
        mountOverlay(target, options);
      }
      return;
    }
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
