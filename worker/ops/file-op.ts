import { lstat, mkdtemp, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { assertNever, KilnError, opCacheDigest, type CopyAction, type FileAction, type FileOp } from "../../solver/llb/index.js";
import type { CacheDep, CacheMap, OpContext, OpRunner, ResultRef, SolverVertex } from "../../solver/op.js";
import { cleanAbsolute, resolveInRoot } from "../fs/index.js";
import { ownerTag } from "../process-owner.js";
import { mountSnapshot, unmountSnapshot } from "../snapshotter/mount.js";
import type { SnapshotMount, Snapshotter } from "../snapshotter/types.js";
import { applyMkdir, applyMkfile, applyRm, resolveOwner } from "./file-actions.js";
import { compileModeChange } from "./file-mode.js";
import { ContentIndex, contentIndexFile } from "../checksum/index.js";
import { copySourceChecksum } from "./copy-checksum.js";
import { directCopyRoots } from "./direct-copy.js";
import { archiveCompression } from "./archive-detect.js";
import { copyPath, FileActionError, mkdirAll, resolveWildcards, type Owner } from "./fs-copy.js";
import { closestExistingPath, CopySourceNotFoundError, existsInRoot } from "./missing-source.js";
import { unpackArchive } from "./unpack-archive.js";

export interface FileRunnerDeps {
  readonly snapshotter: Snapshotter;
  /** Where snapshots' content indexes live (see ContentIndex): a COPY checksum uses its input's index. */
  readonly stateDir?: string;
}

/** A file op that cannot be run as written. */
export class FileOpError extends KilnError {
  constructor(message: string) {
    super("KILN_FILE_OP_INVALID", message);
  }
}

/**
 * The runner of a file op (COPY, WORKDIR's mkdir, ADD of local files and archives).
 *
 * Cache map: the op digest. An input that only copy actions read (not the base) contributes the
 * checksum of just the paths they copy from it (see `copySourceChecksum`), so a COPY is not
 * invalidated by a change to files it does not copy; the base contributes its cache key.
 *
 * Run: prepares a writable snapshot on the base input (scratch when null), mounts it, applies
 * the actions in order (mkdir, mkfile, rm, copy: see `copyPath` for the copy semantics, which
 * follow BuildKit and fsutil), and commits it as the op's only output. Copy sources are read from
 * read-only views of the other inputs. Owners given by name are resolved against the tree being
 * changed. A failed action aborts the snapshot; everything mounted is unmounted before `run` settles.
 * A lone COPY onto paths the base does not have is done without mounts (see `directCopyRoots`),
 * hard-linking the files that stay as they are.
 */
export function createFileRunner(deps: FileRunnerDeps, vertex: SolverVertex): OpRunner {
  const op = vertex.op;
  if (op.kind !== "file") throw new FileOpError(`Cannot run vertex "${vertex.digest}" as a file op: it is a "${op.kind}" op`);
  const snapshotter = deps.snapshotter;
  const stateDir = deps.stateDir;
  return {
    cacheMap(): Promise<CacheMap> {
      const deps = op.inputs.map((_, index): CacheDep => {
        const copies = op.actions.filter((a): a is CopyAction => a.kind === "copy" && a.source === index);
        if (index === op.base || copies.length === 0) return {};
        return {
          contentChecksum: async (ref, signal) => {
            const known = stateDir === undefined ? ContentIndex.empty : await ContentIndex.open(contentIndexFile(stateDir, ref.id));
            return withView(await snapshotter.view(ref.id), (root) => copySourceChecksum(root, copies, signal, known));
          },
        };
      });
      return Promise.resolve({ digest: opCacheDigest(op), deps });
    },

    async run(inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      context.signal.throwIfAborted();
      const inputId = (index: number | null): string | null => {
        if (index === null) return null;
        const ref = inputs[index];
        if (ref === undefined) throw new FileOpError(`Cannot run file op "${vertex.digest}": input ${index} has no result (${inputs.length} given)`);
        return ref.id;
      };
      const mounts = new Mounts();
      const active = await deps.snapshotter.prepare(inputId(op.base));
      let committed = false;
      try {
        // A lone COPY onto fresh paths: written into the snapshot's directory unmounted, files hard-linked.
        const direct = await directCopyRoots(deps.snapshotter, op, active, inputId);
        if (direct !== undefined) {
          await applyCopy(direct.destRoot, direct.srcRoot, direct.action, context.signal, op.inputs[direct.action.source]?.digest, true);
          const id = await deps.snapshotter.commit(active);
          committed = true;
          return [{ id }];
        }
        const root = await mounts.mount(active.mount);
        const sources = new Map<number, string>();
        const sourceDir = async (index: number): Promise<string> => {
          let dir = sources.get(index);
          if (dir === undefined) {
            dir = await mounts.mount(await deps.snapshotter.view(inputId(index)));
            sources.set(index, dir);
          }
          return dir;
        };
        for (const action of op.actions) {
          context.signal.throwIfAborted();
          await applyAction(root, action, sourceDir, context.signal, (index) => op.inputs[index]?.digest);
        }
        await mounts.unmountAll();
        const id = await deps.snapshotter.commit(active);
        committed = true;
        return [{ id }];
      } finally {
        await mounts.unmountAll().catch(() => {});
        if (!committed) await deps.snapshotter.abort(active).catch(() => {});
      }
    },
  };
}

async function applyAction(
  root: string,
  action: FileAction,
  sourceDir: (index: number) => Promise<string>,
  signal: AbortSignal,
  inputDigest: (index: number) => string | undefined,
): Promise<void> {
  switch (action.kind) {
    case "mkdir":
      return applyMkdir(root, action);
    case "mkfile":
      return applyMkfile(root, action);
    case "rm":
      return applyRm(root, action);
    case "copy":
      return applyCopy(root, await sourceDir(action.source), action, signal, inputDigest(action.source));
    default:
      return assertNever(action, "file action");
  }
}

/**
 * COPY, as BuildKit's docopy: without `createDestPath` the destination's parent must exist;
 * with `allowWildcard` the source is a pattern and every match is copied (no match is an error
 * unless `allowEmptyWildcard`); a missing plain source is an error naming it. `linkFiles`: see
 * CopyOptions (only for the unmounted path of `directCopyRoots`).
 */
async function applyCopy(root: string, srcRoot: string, action: CopyAction, signal: AbortSignal, inputDigest: string | undefined, linkFiles = false): Promise<void> {
  if (!action.createDestPath) {
    const parent = dirname(resolveInRoot(root, cleanAbsolute(action.dest)));
    if ((await lstat(parent).catch(() => undefined)) === undefined) {
      throw new FileActionError(`Cannot copy to "${action.dest}": its parent directory does not exist`);
    }
  }
  const sources = action.allowWildcard ? resolveWildcards(srcRoot, action.src, action.followSymlinks) : [action.src];
  // A plain source (no wildcard: it names itself) that is not there: say so, and which path was meant.
  if (sources.length === 1 && sources[0] === cleanAbsolute(action.src) && !(await existsInRoot(srcRoot, action.src))) {
    throw new CopySourceNotFoundError(action.src, { inputDigest, suggestion: await closestExistingPath(srcRoot, action.src) });
  }
  if (sources.length === 0) {
    if (action.allowEmptyWildcard) return;
    throw new FileActionError(`Cannot copy "${action.src}": no source file or directory matches it`);
  }
  const owner = resolveOwner(root, action.owner);
  const mode = compileModeChange(action.mode);
  for (const src of sources) {
    // ADD: a source that is a tar archive by content is unpacked into dest instead (BuildKit's
    // attemptUnpack); --chmod does not apply to what an archive holds, --chown does.
    if (action.attemptUnpack && (await unpackIfArchive(srcRoot, src, root, action.dest, { owner, timestamp: action.timestamp, signal }))) continue;
    await copyPath(srcRoot, src, root, action.dest, {
      ...(owner === undefined ? {} : { owner }),
      ...(mode === undefined ? {} : { mode }),
      ...(action.timestamp === undefined ? {} : { timestamp: action.timestamp }),
      followSymlinks: action.followSymlinks,
      dirContentsOnly: action.dirContentsOnly,
      include: action.include,
      exclude: action.exclude,
      signal,
      linkFiles,
    });
  }
}

/**
 * Unpacks `src` of the tree at `srcRoot` into the directory `dest` (created, with its missing
 * parents, as a copy would) when it is a tar archive by content (see `archiveCompression`);
 * false, touching nothing, when it is not.
 */
async function unpackIfArchive(
  srcRoot: string,
  src: string,
  root: string,
  dest: string,
  options: { readonly owner: Owner | undefined; readonly timestamp: number | undefined; readonly signal: AbortSignal },
): Promise<boolean> {
  const host = resolveInRoot(srcRoot, src);
  const compression = await archiveCompression(host, options.signal).catch(() => null);
  if (compression === null) return false;
  const destDir = resolveInRoot(root, cleanAbsolute(dest));
  await mkdirAll(destDir, 0o755, options.owner, options.timestamp);
  await unpackArchive(host, destDir, {
    archiveName: cleanAbsolute(src).slice(1),
    compression,
    ...(options.owner === undefined ? {} : { owner: options.owner }),
    signal: options.signal,
  });
  return true;
}

/** Mounts `snapshot` on a temp directory for the duration of `fn`. */
async function withView<T>(snapshot: SnapshotMount, fn: (root: string) => Promise<T>): Promise<T> {
  const mounts = new Mounts();
  try {
    return await fn(await mounts.mount(snapshot));
  } finally {
    await mounts.unmountAll();
  }
}

/** Temp mount points of one run, unmounted and removed together. */
class Mounts {
  readonly #dirs: string[] = [];

  async mount(snapshot: SnapshotMount): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `kiln-file-${ownerTag()}-`));
    try {
      mountSnapshot(snapshot, dir);
    } catch (error) {
      await rmdir(dir);
      throw error;
    }
    this.#dirs.push(dir);
    return dir;
  }

  async unmountAll(): Promise<void> {
    let first: unknown;
    while (this.#dirs.length > 0) {
      const dir = this.#dirs.pop() as string;
      try {
        unmountSnapshot(dir);
        await rmdir(dir);
      } catch (error) {
        first ??= error;
      }
    }
    if (first !== undefined) throw first;
  }
}

