import { chmodSync, copyFileSync, constants as fsConstants, lchownSync, linkSync, lstatSync, mkdirSync, readlinkSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { digestHex, KilnError, sha256 } from "../../solver/llb/index.js";
import { EXPLAIN_PATH_LIMIT, type CacheMap, type OpContext, type OpRunner, type ResultRef, type SolverVertex } from "../../solver/op.js";
import {
  ContentIndex, contentChecksum, contentIndexFile, ContentIndexWriter, hashFile, StatCache, statCacheName, visitEntries, type Selection,
} from "../checksum/index.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { lutimesNs } from "../syscalls.js";
import type { BuildSession } from "../worker.js";
import { LocalSyncRecord, statKey } from "./local-sync-record.js";

const SCHEME = "local://";

/** A `local://` source that names no directory of the session, or has malformed attrs. */
export class LocalSourceError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_LOCAL_SOURCE_INVALID", message, options);
  }
}

export interface LocalSourceDeps {
  readonly snapshotter: Snapshotter;
  readonly session: BuildSession;
  /** Where content-hash caches live (`checksums/`), making an unchanged context a stat walk; absent: none. */
  readonly stateDir?: string;
  /** Files changed this recently (ms) are copied again by the next run rather than linked; default 2000. */
  readonly racyMs?: number;
}

/**
 * The runner of a `local://NAME` source op: the directory `session.localDirs[NAME]`, filtered
 * by the attrs `includepatterns` and `excludepatterns` (JSON arrays of dockerignore-style
 * patterns; `followpaths` is accepted and, as symlinks are never followed, has no effect yet).
 *
 * Cache map: the content checksum of exactly the selected files (see `contentChecksum`), with
 * owners counted as 0:0; no inputs. So editing an excluded file changes nothing, and an
 * unchanged context with a state directory costs a stat walk.
 *
 * Run: a new committed snapshot holding a copy of the selected files with their modes, symlinks
 * and times, owned by 0:0, as BuildKit's file transfer resets owners of a build context. With a
 * state directory the copy is incremental (see LocalSyncRecord): a file whose context stat is
 * unchanged since the previous run is hard-linked from the previous run's snapshot (both are
 * immutable, so sharing the inode is safe), and only new and changed files are copied. It also
 * writes the new snapshot's content index (see ContentIndex) from hashes it already has: carried
 * from the previous snapshot's index for linked files, from the stat cache of this build's
 * checksum for copied files whose context stat held (a racy or unknown one is hashed from the
 * copy), so the checksum of a COPY from the snapshot reads no file.
 */
export function createLocalSourceRunner(deps: LocalSourceDeps, vertex: SolverVertex): OpRunner {
  const op = vertex.op;
  if (op.kind !== "source" || !op.identifier.startsWith(SCHEME)) {
    throw new LocalSourceError(`Cannot run vertex "${vertex.digest}" as a local source: it is not a "${SCHEME}" source op`);
  }
  const name = op.identifier.slice(SCHEME.length);
  const selection: Selection = { include: patternsAttr(op.attrs, "includepatterns"), exclude: patternsAttr(op.attrs, "excludepatterns") };
  patternsAttr(op.attrs, "followpaths");
  const directory = (): string => {
    const dir = deps.session.localDirs[name];
    if (dir === undefined) {
      const known = Object.keys(deps.session.localDirs).map((n) => `"${n}"`).join(", ");
      throw new LocalSourceError(`Cannot read local source "${name}": the build was given no directory of that name${known === "" ? "" : `; it has ${known}`}`);
    }
    return dir;
  };

  /** The stat cache of this runner's checksum: the content hashes `run` writes into the index. */
  let hashes: StatCache | undefined;
  return {
    async cacheMap(context: OpContext): Promise<CacheMap> {
      const dir = directory();
      const cache = deps.stateDir === undefined ? undefined : await StatCache.open(join(deps.stateDir, "checksums", statCacheName(dir)));
      // Per-path digests for `--explain-cache` (solver/cache-explain.ts), up to EXPLAIN_PATH_LIMIT
      // paths: the records are kept as they come and turned into the map only for a context
      // within the limit, so a cached rebuild of a larger one pays almost nothing for them.
      const records: [string, string][] = [];
      let pathCount = 0;
      const onEntry = (path: string, record: string): void => {
        if (++pathCount <= EXPLAIN_PATH_LIMIT) records.push([path, record]);
      };
      const digest = await contentChecksum(dir, { selection, owner: { uid: 0, gid: 0 }, signal: context.signal, onEntry, ...(cache === undefined ? {} : { cache }) });
      await cache?.save();
      hashes = cache;
      // The record after its quoted path: type, mode, owner, size, content hash or link target.
      const paths = pathCount > EXPLAIN_PATH_LIMIT ? undefined : Object.fromEntries(records.map(([path, record]) => [path, record.slice(JSON.stringify(path).length + 1)]));
      return { digest, deps: [], explain: { pathCount, ...(paths === undefined ? {} : { paths }) } };
    },

    async run(_inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      const dir = directory();
      const record = deps.stateDir === undefined ? undefined : await LocalSyncRecord.open(join(deps.stateDir, "local-sync", `${recordName(dir, selection)}.json`), deps.racyMs === undefined ? {} : { racyMs: deps.racyMs });
      const previous = record?.snapshot === undefined ? undefined : await snapshotDirectory(deps.snapshotter, record.snapshot);
      const previousIndex = previous === undefined || deps.stateDir === undefined || record?.snapshot === undefined ? ContentIndex.empty : await ContentIndex.open(contentIndexFile(deps.stateDir, record.snapshot));
      const index = deps.stateDir === undefined ? undefined : new ContentIndexWriter();
      const active = await deps.snapshotter.prepare(null);
      try {
        const target = active.upperdir;
        const directories: { path: string; atimeNs: bigint; mtimeNs: bigint }[] = [];
        // The walk streams (no array of 20,000 lstats for the collector to promote) and its
        // visitor makes synchronous calls: a thread-pool round trip per syscall costs more than
        // the syscall for small files. It returns a promise only when a file must be hashed.
        await visitEntries(dir, selection, ({ path, stat }) => {
          // Concatenated, not joined: `path` is clean and relative, and path.join's normalising
          // showed in profiles of a 20,000-file context.
          const from = `${dir}/${path}`;
          const to = `${target}/${path}`;
          const mode = Number(stat.mode & 0o7777n);
          if (stat.isDirectory()) {
            mkdirSync(to);
            chmodSync(to, mode);
            lchownSync(to, 0, 0);
            directories.push({ path: to, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
            return undefined;
          }
          if (stat.isFile()) {
            const key = record === undefined ? "" : statKey(stat);
            if (previous !== undefined && record?.unchanged(path, key) === true && linked(`${previous}/${path}`, to)) {
              record.set(path, stat, key);
              // The same inode as the previous snapshot's file: its index entry holds, and it
              // already has this owner, mode and times.
              const carried = previousIndex.entry(path);
              if (carried !== undefined) {
                index?.addEntry(path, carried);
                return undefined;
              }
              return indexCopy(index, path, to, hashes?.get(path, stat), false);
            }
            copyFileSync(from, to, fsConstants.COPYFILE_FICLONE);
            chmodSync(to, mode);
            // Remembered only if the file did not change while it was copied.
            const held = statKey(lstatSync(from, { bigint: true })) === (key || statKey(stat));
            if (held) record?.set(path, stat, key);
            lchownSync(to, 0, 0);
            lutimesNs(to, stat.atimeNs, stat.mtimeNs);
            return indexCopy(index, path, to, held ? hashes?.get(path, stat) : undefined, true);
          }
          if (stat.isSymbolicLink()) {
            symlinkSync(readlinkSync(from), to);
            lchownSync(to, 0, 0);
            lutimesNs(to, stat.atimeNs, stat.mtimeNs);
          }
          // Devices, fifos and sockets are not build context.
          return undefined;
        }, context.signal);
        // Directory times last, deepest first: creating entries inside changed them.
        for (const d of directories.reverse()) lutimesNs(d.path, d.atimeNs, d.mtimeNs);
        const id = await deps.snapshotter.commit(active);
        if (index !== undefined && deps.stateDir !== undefined) await index.save(contentIndexFile(deps.stateDir, id));
        await record?.save(id);
        return [{ id }];
      } catch (error) {
        await deps.snapshotter.abort(active).catch(() => {});
        throw error;
      }
    },
  };
}

/** Hard-links `from` as `to`; false when that fails (the caller copies instead). */
function linked(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch {
    return false;
  }
}

/**
 * Adds the snapshot file `to` (a copy of context file `path`) to the index: with `known`, the
 * context file's remembered hash (its stat held through the copy); else, when `hashCopy`, the
 * hash of the copy itself, which nothing else writes to.
 */
async function indexCopy(index: ContentIndexWriter | undefined, path: string, to: string, known: string | undefined, hashCopy: boolean): Promise<void> {
  if (index === undefined || (known === undefined && !hashCopy)) return;
  const hex = known ?? (await hashFile(to));
  index.add(path, lstatSync(to, { bigint: true }), hex);
}

/** The record file name of one directory and selection. */
function recordName(dir: string, selection: Selection): string {
  return digestHex(sha256(JSON.stringify([dir, selection.include ?? [], selection.exclude ?? []]))).slice(0, 32);
}

/** The one directory holding committed snapshot `id`'s tree, or undefined (gone, or a chain). */
async function snapshotDirectory(snapshotter: Snapshotter, id: string): Promise<string | undefined> {
  try {
    const view = await snapshotter.view(id);
    return view.kind === "bind" ? view.source : undefined;
  } catch {
    return undefined;
  }
}

function patternsAttr(attrs: Readonly<Record<string, string>>, key: string): string[] {
  const text = attrs[key];
  if (text === undefined || text === "") return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LocalSourceError(`Cannot read attr "${key}" of a local source: it is not JSON (${JSON.stringify(text)})`, { cause: error });
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new LocalSourceError(`Cannot read attr "${key}" of a local source: it must be a JSON array of strings, not ${JSON.stringify(text)}`);
  }
  return value;
}
