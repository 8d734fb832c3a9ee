import { createHash } from "node:crypto";
import { lstat, readlink } from "node:fs/promises";
import { relative, sep } from "node:path";
import type { CopyAction, Digest } from "../../solver/llb/index.js";
import { ContentIndex, contentChecksum, hashFile } from "../checksum/index.js";
import { resolveInRoot } from "../fs/index.js";
import { resolveWildcards } from "./fs-copy.js";

/**
 * The checksum of what `actions` (copies from one input) read from the tree at `root`: for each
 * action, its source pattern and, for each path it resolves to, that entry's record (type, mode,
 * owner, size, content hash or link target) and, for a directory, the content checksum of its
 * selected subtree. A source that does not exist contributes a "missing" marker (the copy will
 * fail, so nothing is cached under it). Times are not covered, as in BuildKit.
 *
 * `index`, the content index of the snapshot at `root` when one was recorded, supplies the
 * content hashes of the files it lists with an unchanged lstat: the result is the same as
 * reading them, only the files it does not vouch for are read.
 */
export async function copySourceChecksum(root: string, actions: readonly CopyAction[], signal: AbortSignal, index: ContentIndex = ContentIndex.empty): Promise<Digest> {
  const hash = createHash("sha256");
  for (const action of actions) {
    hash.update(`copy ${JSON.stringify(action.src)} ${JSON.stringify(action.include)} ${JSON.stringify(action.exclude)}\n`);
    const sources = action.allowWildcard ? resolveWildcards(root, action.src, action.followSymlinks) : [action.src];
    for (const src of sources) {
      signal.throwIfAborted();
      hash.update(`${await pathRecord(root, src, action, signal, index)}\n`);
    }
  }
  return `sha256:${hash.digest("hex")}` as Digest;
}

async function pathRecord(root: string, src: string, action: CopyAction, signal: AbortSignal, index: ContentIndex): Promise<string> {
  const host = resolveInRoot(root, src, { followLast: action.followSymlinks });
  const st = await lstat(host, { bigint: true }).catch(() => undefined);
  if (st === undefined) return `${JSON.stringify(src)} missing`;
  const head = `${JSON.stringify(src)} ${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid}`;
  const inRoot = relative(root, host).split(sep).join("/");
  if (st.isDirectory()) {
    const known = index.size === 0 ? undefined : index.below(inRoot);
    const subtree = await contentChecksum(host, { selection: { include: action.include, exclude: action.exclude }, signal, ...(known === undefined ? {} : { known }) });
    return `${head} dir ${subtree}`;
  }
  if (st.isSymbolicLink()) return `${head} symlink ${JSON.stringify(await readlink(host))}`;
  if (st.isFile()) return `${head} file ${st.size} ${index.get(inRoot, st) ?? (await hashFile(host, signal))}`;
  return `${head} special ${st.rdev}`;
}
