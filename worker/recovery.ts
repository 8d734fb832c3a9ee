import { readdir, readFile, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeStaleContainers } from "./executor/runc.js";
import { ownerAlive, ownerInName } from "./process-owner.js";
import { SnapshotStore } from "./snapshotter/snapshot-store.js";
import { removeStaleActiveSnapshots } from "./snapshotter/store-snapshotter.js";
import { unmount } from "./syscalls.js";

/** What start-up recovery cleaned up after dead kiln processes. */
export interface RecoveryReport {
  readonly containers: readonly string[];
  readonly unmounted: readonly string[];
  readonly directories: readonly string[];
  readonly snapshots: readonly string[];
}

/**
 * Cleans up what kiln processes that died mid-build (SIGKILL, OOM, power loss) left under the
 * state root `root`, in the only safe order: their runc containers first (a running container
 * holds its rootfs), then their mounts (deepest first), then their mount-point directories, then
 * their uncommitted snapshots. Everything is found by the owner tag its name or mark carries
 * (worker/process-owner.ts), so what a live, concurrent kiln holds is never touched. Committed
 * snapshots and cache records need no recovery: they are only ever replaced whole.
 */
export async function recoverStaleState(root: string): Promise<RecoveryReport> {
  const execState = join(root, "executor");
  const containers = await removeStaleContainers(execState);

  const staleDirs: string[] = [];
  for (const [parent, prefixes] of [[join(execState, "exec"), ["run-"]], [tmpdir(), ["kiln-mnt-", "kiln-file-"]]] as const) {
    let names: string[];
    try {
      names = await readdir(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!prefixes.some((p) => name.startsWith(p))) continue;
      const owner = ownerInName(name);
      if (owner !== undefined && !ownerAlive(owner)) staleDirs.push(join(parent, name));
    }
  }

  const unmounted: string[] = [];
  const stillMounted = new Set<string>();
  if (staleDirs.length > 0) {
    const mountPoints = await currentMountPoints();
    for (const dir of staleDirs) {
      const under = mountPoints.filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
      for (const point of under) {
        try {
          unmount(point, { detach: true });
          unmounted.push(point);
        } catch {
          stillMounted.add(dir);
        }
      }
    }
  }
  const directories: string[] = [];
  for (const dir of staleDirs) {
    // Never recurse into a directory that may still have something mounted below it.
    if (stillMounted.has(dir)) continue;
    if ((await currentMountPoints()).some((m) => m.startsWith(`${dir}/`) || m === dir)) continue;
    if (dir.startsWith(join(execState, "exec"))) await rm(dir, { recursive: true, force: true });
    else await rmdir(dir).catch(() => undefined);
    directories.push(dir);
  }

  const snapshots: string[] = [];
  for (const kind of ["overlay", "native"]) {
    const storeRoot = join(root, "snapshots", kind);
    try {
      await readdir(join(storeRoot, "active"));
    } catch {
      continue;
    }
    snapshots.push(...(await removeStaleActiveSnapshots(await SnapshotStore.open(storeRoot))));
  }
  return { containers, unmounted, directories, snapshots };
}

/** Mount points of this mount namespace, unescaped from /proc/self/mountinfo's octal escapes. */
async function currentMountPoints(): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined && point !== "")
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}
