import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { cleanAbsolute, resolveInRoot } from "../fs/index.js";
import { FileActionError } from "./fs-copy.js";

/** How many entries of a source tree the typo search looks at, at most: an error path must stay cheap. */
const SEARCH_LIMIT = 20_000;

/**
 * A copy whose source path does not exist in the tree it copies from: BuildKit's "failed to
 * compute cache key: … not found", with what kiln knows to say why. `path` is the source as the
 * copy action names it (absolute in the source tree); `inputDigest` is the op digest of the input
 * the source was read from (so the caller can tell the build context from a stage or an image);
 * `suggestion` is the existing path closest to it by edit distance, when one is close enough.
 * Its code stays KILN_FILE_ACTION_FAILED (a FileActionError); the cli explains it further.
 */
export class CopySourceNotFoundError extends FileActionError {
  readonly path: string;
  readonly inputDigest: string | undefined;
  readonly suggestion: string | undefined;

  constructor(path: string, options: { readonly inputDigest?: string | undefined; readonly suggestion?: string | undefined; readonly cause?: unknown } = {}) {
    const hint = options.suggestion === undefined ? "" : `; did you mean "${options.suggestion}"?`;
    super(`Cannot copy "${path}": it does not exist in the source${hint}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.path = path;
    this.inputDigest = options.inputDigest;
    this.suggestion = options.suggestion;
  }
}

/** Whether `path` exists in the tree at `root` (the last component itself, not followed). */
export async function existsInRoot(root: string, path: string): Promise<boolean> {
  try {
    await lstat(resolveInRoot(root, cleanAbsolute(path)));
    return true;
  } catch {
    return false;
  }
}

/**
 * The existing path of the tree at `root` closest to the missing `path` (both absolute in the
 * tree, the result with a leading "/"), or undefined when nothing is close: the smallest edit distance (a transposition counts
 * one) of the whole path, allowed up to a third of its length (at least 1, at most 4); failing
 * that, an entry elsewhere in the tree with the same base name. Looks at no more than 20,000
 * entries, breadth first, and never follows symlinks.
 */
export async function closestExistingPath(root: string, path: string): Promise<string | undefined> {
  const wanted = cleanAbsolute(path).replace(/^\/+/u, "");
  if (wanted === "") return undefined;
  const base = wanted.slice(wanted.lastIndexOf("/") + 1);
  const limit = Math.min(4, Math.max(1, Math.floor(wanted.length / 3)));
  let best: { path: string; distance: number } | undefined;
  let sameBase: string | undefined;
  let seen = 0;
  const queue: string[] = [""];
  const top = resolveInRoot(root, "/");
  while (queue.length > 0 && seen < SEARCH_LIMIT) {
    const dir = queue.shift() as string;
    let entries;
    try {
      entries = await readdir(join(top, dir), { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (++seen > SEARCH_LIMIT) break;
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      // Paths much longer or shorter than the wanted one cannot be within the limit.
      if (Math.abs(rel.length - wanted.length) <= limit) {
        const distance = editDistance(wanted, rel);
        if (distance <= limit && (best === undefined || distance < best.distance)) best = { path: rel, distance };
      }
      if (sameBase === undefined && entry.name === base) sameBase = rel;
      if (entry.isDirectory()) queue.push(rel);
    }
  }
  const found = best?.path ?? sameBase;
  return found === undefined ? undefined : `/${found}`;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions cost 1. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((rows[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (rows[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (rows[i - 2]?.[j - 2] ?? 0) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]?.[b.length] ?? 0;
}
