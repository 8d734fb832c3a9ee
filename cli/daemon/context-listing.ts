import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, readdir, readFile, readlink, stat } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createSourceFile, dockerignoreMatcher, parseDockerignore } from "../../frontend/index.js";
import type { PathMatcher } from "../../solver/llb/index.js";
import { SYNC_CONTEXT, SYNC_DOCKERFILE, type SyncEntry } from "./protocol.js";

/** What a client offers a daemon to sync: the listing, and where each listed regular file is on the client. */
export interface ContextListing {
  readonly entries: readonly SyncEntry[];
  /** Listing path of a regular file → its absolute path on the client. */
  readonly files: ReadonlyMap<string, string>;
}

/**
 * Lists what the Dockerfile `dockerfile` can reach in `contextDir` after .dockerignore, as a
 * sync listing (see SyncEntry): SYNC_CONTEXT holding the context, SYNC_DOCKERFILE holding the
 * Dockerfile and its own `<name>.dockerignore`. Entries come parents first, names sorted. A
 * directory that .dockerignore excludes is listed only when an exception (`!pattern`) keeps
 * something below it, as fsutil lists the parents of what it includes. The context's
 * .dockerignore itself is always listed (the daemon's frontend reads it), as the docker CLI
 * always sends it. Sockets, fifos and devices are left out.
 */
export async function listContext(contextDir: string, dockerfile: string, signal?: AbortSignal): Promise<ContextListing> {
  const root = resolve(contextDir);
  const ignore = await readIgnore(dockerfile, root);
  const files = new Map<string, string>();
  const walk = async (rel: string): Promise<SyncEntry[]> => {
    const out: SyncEntry[] = [];
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      signal?.throwIfAborted();
      const path = rel === "" ? name : `${rel}/${name}`;
      const excluded = path === ".dockerignore" ? false : (ignore?.excludes(path) ?? false);
      const full = join(root, path);
      const stats = await lstat(full, { bigint: true });
      const listed = `${SYNC_CONTEXT}/${path}`;
      if (stats.isDirectory()) {
        if (excluded && ignore?.hasExceptions !== true) continue;
        const below = await walk(path);
        if (!excluded || below.length > 0) out.push(entryOf(listed, "dir", stats), ...below);
      } else if (excluded) {
        continue;
      } else if (stats.isSymbolicLink()) {
        out.push(entryOf(listed, "symlink", stats, await readlink(full)));
      } else if (stats.isFile()) {
        out.push(entryOf(listed, "file", stats));
        files.set(listed, full);
      }
    }
    return out;
  };
  const entries: SyncEntry[] = [entryOf(SYNC_CONTEXT, "dir", await stat(root, { bigint: true })), ...(await walk(""))];
  // The Dockerfile's directory is synthetic: only its two files travel.
  entries.push({ path: SYNC_DOCKERFILE, kind: "dir", mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, size: 0, mtimeNs: "0" });
  const name = basename(dockerfile);
  for (const [file, entry] of [[dockerfile, name], [`${dockerfile}.dockerignore`, `${name}.dockerignore`]] as const) {
    if (!existsSync(file)) continue;
    // Followed, not listed as a link: a Dockerfile that is a symlink is read through it, as locally.
    const listed = `${SYNC_DOCKERFILE}/${entry}`;
    entries.push(entryOf(listed, "file", await stat(file, { bigint: true })));
    files.set(listed, resolve(file));
  }
  return { entries, files };
}

function entryOf(path: string, kind: SyncEntry["kind"], stats: BigIntStats, target?: string): SyncEntry {
  return {
    path,
    kind,
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    size: kind === "file" ? Number(stats.size) : 0,
    mtimeNs: String(stats.mtimeNs),
    ...(target === undefined ? {} : { target }),
  };
}

/**
 * The sync key of a build: one kept copy on the daemon per client user, context directory and
 * Dockerfile directory. Two checkouts of one project are two keys; a rebuild of one is the same key.
 */
export function syncKey(contextDir: string, dockerfile: string, uid: number = process.getuid?.() ?? 0): string {
  return createHash("sha256")
    .update(JSON.stringify([uid, resolve(contextDir), dirname(resolve(dockerfile))]))
    .digest("hex");
}

/** The .dockerignore that applies: `<Dockerfile>.dockerignore` wins over the context's, as in BuildKit. */
async function readIgnore(dockerfile: string, contextDir: string): Promise<PathMatcher | undefined> {
  for (const path of [`${dockerfile}.dockerignore`, join(contextDir, ".dockerignore")]) {
    if (!existsSync(path)) continue;
    return dockerignoreMatcher(parseDockerignore(createSourceFile(basename(path), await readFile(path, "utf8"))));
  }
  return undefined;
}
