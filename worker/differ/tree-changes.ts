import type { BigIntStats } from "node:fs";
import { open, lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { getXattr, listXattrs } from "../syscalls.js";
import { type Change, joinRel } from "./changes.js";
import { compareBytes } from "./tar-entry.js";

/**
 * The changes from `parent` (a full tree; null: empty) to `tree` (a full tree), for the native
 * snapshotter, in the same order as `upperChanges`. An entry is changed when its type, mode,
 * owner, device, size, nanosecond mtime, link target or xattrs differ; when all of those match
 * but the mtime has no sub-second part (a tool that truncates times), the bytes are compared as
 * well, as containerd's double walk does. A name only in `parent` is a deletion. A directory that
 * replaces a non-directory is written with its whole contents.
 */
export async function* treeChanges(tree: string, parent: string | null, rel = ""): AsyncGenerator<Change> {
  const names = (await readdir(rel === "" ? tree : join(tree, rel))).sort(compareBytes);
  const parentNames = parent === null ? [] : await readdir(rel === "" ? parent : join(parent, rel));
  const present = new Set(names);
  const gone = parentNames.filter((name) => !present.has(name));
  const all = [...names.map((name) => ({ name, gone: false })), ...gone.map((name) => ({ name, gone: true }))];
  all.sort((a, b) => compareBytes(a.gone ? `.wh.${a.name}` : a.name, b.gone ? `.wh.${b.name}` : b.name));
  for (const { name, gone: deleted } of all) {
    const path = joinRel(rel, name);
    if (deleted) {
      yield { kind: "whiteout", rel: path, mtime: 0 };
      continue;
    }
    const abs = join(tree, path);
    const stats = await lstat(abs, { bigint: true });
    const before = parent === null ? undefined : await lstat(join(parent, path), { bigint: true }).catch(() => undefined);
    if (before === undefined || (await changed(abs, stats, join(parent ?? "", path), before))) yield { kind: "entry", rel: path, abs, stats };
    if (stats.isDirectory()) yield* treeChanges(tree, before?.isDirectory() === true ? parent : null, path);
  }
}

async function changed(abs: string, a: BigIntStats, parentAbs: string, b: BigIntStats): Promise<boolean> {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return true;
  if (!a.isDirectory() && (a.size !== b.size || a.mtimeNs !== b.mtimeNs)) return true;
  if (a.isDirectory() && a.mtimeNs !== b.mtimeNs) return true;
  if (a.isSymbolicLink() && (await readlink(abs)) !== (await readlink(parentAbs))) return true;
  if (!sameXattrs(abs, parentAbs)) return true;
  if (a.isFile() && a.mtimeNs % 1_000_000_000n === 0n) return !(await sameBytes(abs, parentAbs));
  return false;
}

function sameXattrs(a: string, b: string): boolean {
  const names = listXattrs(a).sort();
  const other = listXattrs(b).sort();
  if (names.join("\0") !== other.join("\0")) return false;
  return names.every((name) => Buffer.compare(getXattr(a, name) ?? Buffer.alloc(0), getXattr(b, name) ?? Buffer.alloc(0)) === 0);
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, "r"), open(b, "r")]);
  try {
    const bufferA = Buffer.alloc(65536);
    const bufferB = Buffer.alloc(65536);
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(bufferA, 0, bufferA.length), fb.read(bufferB, 0, bufferB.length)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (Buffer.compare(bufferA.subarray(0, ra.bytesRead), bufferB.subarray(0, rb.bytesRead)) !== 0) return false;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
