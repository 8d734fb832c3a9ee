import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";

export interface PackDirectoryOptions {
  /** Seconds since 1970: newer modification times are clamped to this (SOURCE_DATE_EPOCH). */
  readonly epoch?: number;
  readonly signal?: AbortSignal;
}

/**
 * A tar of everything under `root` (not `root` itself), as an image layer wants it: names relative
 * without a leading `./`, directories with a trailing slash, entries sorted by name at every level
 * (so a directory always precedes its contents), numeric owners (no user names), permission bits
 * including setuid, setgid and sticky, modification times in whole seconds (clamped to `epoch`
 * when given), symlinks with their targets, hard links as link entries to the first path seen,
 * character and block devices with their numbers, and FIFOs. Sockets are skipped (a tar cannot
 * hold them); extended attributes are not written yet. The same tree always gives the same bytes.
 * The caller consumes or destroys the returned stream; an error while walking destroys it.
 */
export function packDirectory(root: string, options: PackDirectoryOptions = {}): Readable {
  return packTrees([{ root, prefix: "" }], options);
}

/** One tree in a multi-tree tar: its directory (null: empty) and the directory name it goes under. */
export interface PrefixedTree {
  readonly root: string | null;
  /** A relative directory name (`linux_amd64`); "" puts the tree at the top. */
  readonly prefix: string;
}

/**
 * Like packDirectory, for several trees in one tar, each under its own top-level directory
 * (root-owned, mode 0755, time 0), as BuildKit's tar exporter writes a multi-platform result:
 * `linux_amd64/…`, `linux_arm64/…`, in the order given.
 */
export function packTrees(trees: readonly PrefixedTree[], options: PackDirectoryOptions = {}): Readable {
  const pack = tar.pack();
  const links = new Map<string, string>();
  const walk = async (root: string, prefix: string, relative: string): Promise<void> => {
    const names = (await readdir(join(root, relative))).sort(compareBytes);
    for (const name of names) {
      options.signal?.throwIfAborted();
      const path = relative === "" ? name : `${relative}/${name}`;
      const absolute = join(root, path);
      const stats = await lstat(absolute);
      const base = {
        name: prefix === "" ? path : `${prefix}/${path}`,
        mode: stats.mode & 0o7777,
        uid: stats.uid,
        gid: stats.gid,
        uname: "",
        gname: "",
        mtime: new Date(clampSeconds(stats, options.epoch) * 1000),
      };
      if (stats.isDirectory()) {
        await addEntry(pack, { ...base, name: `${base.name}/`, type: "directory" });
        await walk(root, prefix, path);
      } else if (stats.isSymbolicLink()) {
        await addEntry(pack, { ...base, type: "symlink", linkname: await readlink(absolute) });
      } else if (stats.isFile()) {
        const key = `${prefix}:${stats.dev}:${stats.ino}`;
        const first = stats.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          await addEntry(pack, { ...base, type: "link", linkname: first });
          continue;
        }
        if (stats.nlink > 1) links.set(key, base.name);
        await new Promise<void>((resolve, reject) => {
          const entry = pack.entry({ ...base, type: "file", size: stats.size }, (error) => (error ? reject(error) : resolve()));
          pipeline(createReadStream(absolute), entry).catch(reject);
        });
      } else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
        const type = stats.isCharacterDevice() ? "character-device" : "block-device";
        await addEntry(pack, { ...base, type, devmajor: major(stats.rdev), devminor: minor(stats.rdev) });
      } else if (stats.isFIFO()) {
        await addEntry(pack, { ...base, type: "fifo" });
      }
    }
  };
  const walkAll = async (): Promise<void> => {
    for (const tree of trees) {
      if (tree.prefix !== "") await addEntry(pack, { name: `${tree.prefix}/`, type: "directory", mode: 0o755, uid: 0, gid: 0, uname: "", gname: "", mtime: new Date(0) });
      if (tree.root !== null) await walk(tree.root, tree.prefix, "");
    }
  };
  walkAll().then(
    () => pack.finalize(),
    (error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  // tar-stream is built on streamx; callers get a Node stream (destroying it destroys the pack).
  return Readable.from(pack, { objectMode: false });
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (error) => (error ? reject(error) : resolve())));
}

function clampSeconds(stats: Stats, epoch: number | undefined): number {
  const seconds = Math.floor(stats.mtimeMs / 1000);
  return epoch !== undefined && seconds > epoch ? epoch : Math.max(0, seconds);
}

/** Linux's dev_t encoding (glibc's gnu_dev_major/minor). */
function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}

function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/** Byte order of UTF-8 names, as Go's sort of strings does (not locale order). */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
