import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readlink } from "node:fs/promises";
import type { CopyAction, Digest } from "../../solver/llb/index.js";
import { contentChecksum } from "../checksum/index.js";
import { resolveInRoot } from "../fs/index.js";
import { resolveWildcards } from "./fs-copy.js";

/**
 * The checksum of what `actions` (copies from one input) read from the tree at `root`: for each
 * action, its source pattern and, for each path it resolves to, that entry's record (type, mode,
 * owner, size, content hash or link target) and, for a directory, the content checksum of its
 * selected subtree. A source that does not exist contributes a "missing" marker (the copy will
 * fail, so nothing is cached under it). Times are not covered, as in BuildKit.
 */
export async function copySourceChecksum(root: string, actions: readonly CopyAction[], signal: AbortSignal): Promise<Digest> {
  const hash = createHash("sha256");
  for (const action of actions) {
    hash.update(`copy ${JSON.stringify(action.src)} ${JSON.stringify(action.include)} ${JSON.stringify(action.exclude)}\n`);
    const sources = action.allowWildcard ? resolveWildcards(root, action.src, action.followSymlinks) : [action.src];
    for (const src of sources) {
      signal.throwIfAborted();
      hash.update(`${await pathRecord(root, src, action, signal)}\n`);
    }
  }
  return `sha256:${hash.digest("hex")}` as Digest;
}

async function pathRecord(root: string, src: string, action: CopyAction, signal: AbortSignal): Promise<string> {
  const host = resolveInRoot(root, src, { followLast: action.followSymlinks });
  const st = await lstat(host, { bigint: true }).catch(() => undefined);
  if (st === undefined) return `${JSON.stringify(src)} missing`;
  const head = `${JSON.stringify(src)} ${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid}`;
  if (st.isDirectory()) {
    const subtree = await contentChecksum(host, { selection: { include: action.include, exclude: action.exclude }, signal });
    return `${head} dir ${subtree}`;
  }
  if (st.isSymbolicLink()) return `${head} symlink ${JSON.stringify(await readlink(host))}`;
  if (st.isFile()) return `${head} file ${st.size} ${await hashFile(host, signal)}`;
  return `${head} special ${st.rdev}`;
}

function hashFile(path: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    const stream = createReadStream(path, { signal });
    stream.on("data", (chunk) => hash.update(chunk));
    stream.once("error", reject);
    stream.once("end", () => resolve(hash.digest("hex")));
  });
}
