import { constants as fsConstants } from "node:fs";
import { chmod, copyFile, lchown, link, lstat, mkdir, readlink, symlink } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, KilnError, sha256 } from "../../solver/llb/index.js";
import type { CacheMap, OpContext, OpRunner, ResultRef, SolverVertex } from "../../solver/op.js";
import { contentChecksum, selectEntries, StatCache, statCacheName, type Selection } from "../checksum/index.js";
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
 * immutable, so sharing the inode is safe), and only new and changed files are copied.
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

  return {
    async cacheMap(context: OpContext): Promise<CacheMap> {
      const dir = directory();
      const cache = deps.stateDir === undefined ? undefined : await StatCache.open(join(deps.stateDir, "checksums", statCacheName(dir)));
      const digest = await contentChecksum(dir, { selection, owner: { uid: 0, gid: 0 }, signal: context.signal, ...(cache === undefined ? {} : { cache }) });
      await cache?.save();
      return { digest, deps: [] };
    },

    async run(_inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      const dir = directory();
      const entries = await selectEntries(dir, selection, context.signal);
      const record = deps.stateDir === undefined ? undefined : await LocalSyncRecord.open(join(deps.stateDir, "local-sync", `${recordName(dir, selection)}.json`), deps.racyMs === undefined ? {} : { racyMs: deps.racyMs });
      const previous = record?.snapshot === undefined ? undefined : await snapshotDirectory(deps.snapshotter, record.snapshot);
      const active = await deps.snapshotter.prepare(null);
      try {
        const target = active.upperdir;
        const directories: { path: string; atimeNs: bigint; mtimeNs: bigint }[] = [];
        for (const { path, stat } of entries) {
          context.signal.throwIfAborted();
          const from = join(dir, path);
          const to = join(target, path);
          const mode = Number(stat.mode & 0o7777n);
          if (stat.isDirectory()) {
            await mkdir(to);
            await chmod(to, mode);
            directories.push({ path: to, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
          } else if (stat.isFile()) {
            if (previous !== undefined && record?.unchanged(path, stat) === true && (await link(join(previous, path), to).then(() => true, () => false))) {
              record.set(path, stat);
              continue; // The linked inode already has this owner, mode and times.
            }
            await copyFile(from, to, fsConstants.COPYFILE_FICLONE);
            await chmod(to, mode);
            // Remembered only if the file did not change while it was copied.
            if (statKey(await lstat(from, { bigint: true })) === statKey(stat)) record?.set(path, stat);
          } else if (stat.isSymbolicLink()) {
            await symlink(await readlink(from), to);
          } else {
            continue; // Devices, fifos and sockets are not build context.
          }
          await lchown(to, 0, 0);
          if (!stat.isDirectory()) lutimesNs(to, stat.atimeNs, stat.mtimeNs);
        }
        // Directory times last, deepest first: creating entries inside changed them.
        for (const d of directories.reverse()) lutimesNs(d.path, d.atimeNs, d.mtimeNs);
        const id = await deps.snapshotter.commit(active);
        await record?.save(id);
        return [{ id }];
      } catch (error) {
        await deps.snapshotter.abort(active).catch(() => {});
        throw error;
      }
    },
  };
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
