import type { BigIntStats } from "node:fs";

/**
 * One change a snapshot makes to its parent, in the order the tar lists it: an entry to write
 * (its path, where to read it, its stats), a deletion (written as `.wh.NAME`), or a directory made
 * opaque (its lower contents hidden; written as `DIR/.wh..wh..opq` right after the directory).
 * Whiteout and opaque markers carry mtime 0: when a deletion happened is not part of the tree, and
 * a layer applied from the diff must diff to the same bytes.
 */
export type Change =
  | { readonly kind: "entry"; readonly rel: string; readonly abs: string; readonly stats: BigIntStats }
  | { readonly kind: "whiteout"; readonly rel: string; readonly mtime: number }
  | { readonly kind: "opaque"; readonly rel: string; readonly mtime: number };

export function joinRel(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

export function seconds(stats: BigIntStats): number {
  return Number(stats.mtimeNs / 1_000_000_000n);
}
