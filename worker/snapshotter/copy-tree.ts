import { constants, type BigIntStats } from "node:fs";
import { copyFile, chmod, lchown, link, lstat, mkdir, readdir, readlink, symlink } from "node:fs/promises";
import { join } from "node:path";
import { getXattr, listXattrs, lutimesNs, mknod, setXattr } from "../syscalls.js";

/**
 * Copies the tree at `source` into `target` (an existing, empty directory whose own metadata is
 * copied too), preserving what a layer can carry: owners, modes, nanosecond mtimes, xattrs,
 * hardlinks (within the tree), symlinks, devices and fifos. Sockets are skipped: no layer can hold
 * one. File data goes through copy_file_range (a reflink where the filesystem can).
 */
export async function copyTree(source: string, target: string): Promise<void> {
  const links = new Map<string, string>();
  const dirs: { path: string; stats: BigIntStats }[] = [];
  const rootStats = await lstat(source, { bigint: true });
  await copyDirContents(source, target, links, dirs);
  dirs.push({ path: target, stats: rootStats });
  await copyMetadata(source, target, rootStats);
  // Directory times last: creating their entries changed them.
  for (const { path, stats } of dirs) lutimesNs(path, stats.atimeNs, stats.mtimeNs);
}

async function copyDirContents(source: string, target: string, links: Map<string, string>, dirs: { path: string; stats: BigIntStats }[]): Promise<void> {
  for (const name of await readdir(source)) {
    const from = join(source, name);
    const to = join(target, name);
    const stats = await lstat(from, { bigint: true });
    if (stats.isDirectory()) {
      await mkdir(to, { mode: 0o700 });
      await copyDirContents(from, to, links, dirs);
      await copyMetadata(from, to, stats);
      dirs.push({ path: to, stats });
      continue;
    }
    if (stats.isFile() && stats.nlink > 1n) {
      const key = `${stats.dev}:${stats.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        await link(first, to);
        continue;
      }
      links.set(key, to);
    }
    if (stats.isFile()) await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    else if (stats.isSymbolicLink()) await symlink(await readlink(from), to);
    else if (stats.isCharacterDevice() || stats.isBlockDevice()) mknod(to, stats.isCharacterDevice() ? "char" : "block", 0o600, major(stats.rdev), minor(stats.rdev));
    else if (stats.isFIFO()) mknod(to, "fifo", 0o600);
    else continue;
    await copyMetadata(from, to, stats);
    lutimesNs(to, stats.atimeNs, stats.mtimeNs);
  }
}

async function copyMetadata(from: string, to: string, stats: BigIntStats): Promise<void> {
  await lchown(to, Number(stats.uid), Number(stats.gid));
  if (!stats.isSymbolicLink()) await chmod(to, Number(stats.mode & 0o7777n));
  for (const name of listXattrs(from)) {
    const value = getXattr(from, name);
    if (value !== undefined) setXattr(to, name, value);
  }
}

/** glibc's major() of a dev_t. */
export function major(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn & 0xffffffffn));
}

/** glibc's minor() of a dev_t. */
export function minor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn & 0xffffffffn));
}
