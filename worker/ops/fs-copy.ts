import { constants as fsConstants, linkSync, lstatSync, readdirSync, statSync, type BigIntStats } from "node:fs";
import { chmod, copyFile, lchown, link, lstat, mkdir, readlink, rm, stat, symlink, lutimes } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { createPathMatcher, KilnError, type PathMatcher } from "../../solver/llb/index.js";
import { cleanAbsolute, resolveInRoot, splitPath } from "../fs/index.js";
import { getXattr, listXattrs, lutimesNs, mknod, setXattr } from "../syscalls.js";
import type { ModeChange } from "./file-mode.js";
import { containsWildcards, goMatch } from "./go-match.js";

/** A file action that cannot be done to the tree (a missing source, a file where a directory must be). */
export class FileActionError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_FILE_ACTION_FAILED", message, options);
  }
}

/** An owner for created and copied entries. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

export interface CopyOptions {
  /** Owner of every copied entry and created parent; absent: copied entries keep their owners. */
  readonly owner?: Owner;
  readonly mode?: ModeChange;
  /** Seconds since the epoch for every copied entry and created parent; absent: times are copied. */
  readonly timestamp?: number;
  readonly followSymlinks: boolean;
  readonly dirContentsOnly: boolean;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly signal?: AbortSignal;
  /**
   * Hard-link a regular file instead of copying it when the copy would be identical (same owner,
   * mode and times: no owner, mode or timestamp change applies to it), falling back to a copy
   * when the link fails. Only for sources that are immutable (committed snapshots) on the same
   * filesystem as an unmounted destination: the two names then share one inode, which neither
   * snapshot ever changes in place.
   */
  readonly linkFiles?: boolean;
}

/**
 * Copies `src` of the tree at `srcRoot` to `dest` of the tree at `destRoot` with the semantics of
 * tonistiigi/fsutil's `copy.Copy` as BuildKit's file op calls it (`cp -a`-like):
 * - the parent of `dest` is created (0755, owner and time as for copied entries); a `dest` that
 *   ends in `/` is created itself;
 * - a directory source copied onto an existing `dest` lands inside it (`dest/basename`) unless
 *   `dirContentsOnly`; a file source onto an existing directory lands inside it; otherwise
 *   `dest` is the new name;
 * - with `followSymlinks` a symlink named by `src` is followed (inside `srcRoot`); symlinks below
 *   it are always copied as symlinks; hardlinks among copied files stay hardlinks;
 * - modes, owners (unless `owner`), times (unless `timestamp`) and xattrs are preserved; an
 *   existing directory in the way is merged into, its metadata overwritten below the top;
 *   a file in the way is replaced, a directory where a file goes is an error;
 * - `exclude` patterns (dockerignore syntax, relative to `src`) skip entries; `include` patterns
 *   keep only matching entries and the directories leading to them.
 * Paths inside both roots are resolved as the roots' own `/` (nothing outside is touched).
 */
export async function copyPath(srcRoot: string, src: string, destRoot: string, dest: string, options: CopyOptions): Promise<void> {
  const ensure = dest.endsWith("/") || basename(dest) === "." ? dest : dirname(cleanAbsolute(dest));
  await mkdirAll(resolveInRoot(destRoot, ensure), 0o755, options.owner, options.timestamp);
  let destHost = resolveInRoot(destRoot, cleanAbsolute(dest));
  const srcHost = resolveInRoot(srcRoot, src, { followLast: options.followSymlinks });

  let srcStat: BigIntStats;
  try {
    srcStat = await lstat(srcHost, { bigint: true });
  } catch (error) {
    throw new FileActionError(`Cannot copy "${src}": it does not exist in the source`, { cause: error });
  }
  const destStat = await stat(destHost).catch(() => undefined);
  const srcIsDir = srcStat.isDirectory();
  if ((!options.dirContentsOnly && srcIsDir && destStat !== undefined) || (!srcIsDir && destStat?.isDirectory() === true)) {
    destHost = join(destHost, basename(cleanAbsolute(src)));
  }
  const parent = options.dirContentsOnly && srcIsDir && destStat === undefined ? destHost : dirname(destHost);
  await mkdirAll(parent, 0o755, options.owner, options.timestamp);
  const copier = new Copier(options);
  await copier.copy(srcHost, "", destHost, false, options.include.length === 0);
}

/**
 * The paths (relative to `root`) that `pattern` names: fsutil's ResolveWildcards. Components up
 * to the first one with a wildcard are taken literally; the rest is matched with Go's
 * `filepath.Match` against every path below, a matched directory not being descended into.
 * Lexical order. A pattern without wildcards names itself, whether it exists or not.
 */
export function resolveWildcards(root: string, pattern: string, followSymlinks: boolean): string[] {
  const parts = splitPath(cleanAbsolute(pattern));
  const first = parts.findIndex((p) => containsWildcards(p));
  if (first === -1) return [`/${parts.join("/")}`];
  const literal = `/${parts.slice(0, first).join("/")}`;
  const rest = parts.slice(first).join("/");
  const depth = parts.length - first;
  const base = resolveInRoot(root, literal, { followLast: followSymlinks || literal === "/" });
  const rootPrefix = resolveInRoot(root, "/");
  const out: string[] = [];
  const walk = (dir: string, rel: string, level: number) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const relPath = rel === "" ? name : `${rel}/${name}`;
      const host = join(dir, name);
      if (goMatch(rest, relPath)) {
        out.push(host.slice(rootPrefix.length) || "/");
        continue;
      }
      // `*` never matches "/", so a path deeper than the pattern cannot match.
      if (level < depth && lstatSync(host).isDirectory()) walk(host, relPath, level + 1);
    }
  };
  try {
    if (statSync(base).isDirectory()) walk(base, "", 1);
  } catch {
    // A missing literal part matches nothing.
  }
  return out;
}

/**
 * Creates `path` and its missing parents (fsutil's MkdirAll): each new directory gets `mode`
 * (as under BuildKit's umask 022), `owner` when given, and `timestamp` when given. Existing
 * directories are left alone; a non-directory in the way is an error.
 */
export async function mkdirAll(path: string, mode: number, owner: Owner | undefined, timestamp: number | undefined): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st !== undefined) {
    if (!st.isDirectory()) throw new FileActionError(`Cannot create directory "${path}": a file of that name exists`);
    return;
  }
  const parent = dirname(path);
  if (parent !== path) await mkdirAll(parent, mode, owner, timestamp);
  try {
    await mkdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return;
    throw error;
  }
  await chmod(path, mode & ~0o022);
  if (owner !== undefined) await lchown(path, owner.uid, owner.gid);
  if (timestamp !== undefined) await lutimes(path, timestamp, timestamp);
}

class Copier {
  readonly #options: CopyOptions;
  readonly #exclude: PathMatcher | undefined;
  readonly #include: PathMatcher | undefined;
  readonly #inodes = new Map<string, string>();
  #sinceYield = 0;

  constructor(options: CopyOptions) {
    this.#options = options;
    this.#exclude = options.exclude.length === 0 ? undefined : createPathMatcher(options.exclude);
    // An include pattern "matches" where a dockerignore pattern would exclude.
    this.#include = options.include.length === 0 ? undefined : createPathMatcher(options.include);
  }

  /**
   * Copies `src` (host path) to `target`. `rel` is its path below the copied source ("" for the
   * top); `included` says whether the include patterns already accept everything here.
   */
  async copy(src: string, rel: string, target: string, overwriteMetadata: boolean, included: boolean): Promise<boolean> {
    // Lookups and links are synchronous (a thread-pool round trip costs more than each syscall
    // on a tree of small files); the event loop gets a turn every YIELD_EVERY entries.
    if (++this.#sinceYield >= YIELD_EVERY) {
      this.#sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.#options.signal?.throwIfAborted();
    const st = lstatSync(src, { bigint: true });
    let inside = included;
    if (rel !== "") {
      // An excluded directory is still entered when an exception ("!…") may re-include something below.
      if (this.#exclude?.excludes(rel) === true && !(st.isDirectory() && this.#exclude.hasExceptions)) return false;
      if (!inside && this.#include !== undefined) inside = this.#include.excludes(rel);
    }
    if (st.isDirectory()) return this.#copyDirectory(src, rel, target, st, overwriteMetadata, inside);
    if (!inside) return false;
    // Both are promise-free in the common case (no include patterns, nothing in the way): a
    // COPY of 20,000 small files otherwise waits on two settled promises per file.
    if (this.#include !== undefined) await this.#ensureParents(target);
    if (fileInTheWay(target)) await rm(target, { force: true });
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const linked = st.nlink > 1n ? this.#inodes.get(key) : undefined;
      if (linked !== undefined) {
        await link(linked, target);
        return true;
      }
      if (this.#linkable(st) && linkedSync(src, target)) return true;
      await copyFile(src, target, fsConstants.COPYFILE_FICLONE);
      if (st.nlink > 1n) this.#inodes.set(key, target);
    } else if (st.isSymbolicLink()) {
      await symlink(await readlink(src), target);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const kind = st.isCharacterDevice() ? "char" : st.isBlockDevice() ? "block" : "fifo";
      mknod(target, kind, Number(st.mode & 0o7777n), Number((st.rdev >> 8n) & 0xfffn), Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n)));
    } else {
      // Sockets cannot be copied.
      return false;
    }
    await this.#copyInfo(src, target, st);
    return true;
  }

  /**
   * As fsutil: with no include patterns the top directory's metadata is written only when it was
   * created, nested ones always; under include patterns only created directories get it, and a
   * directory not itself included is made only when something below it is copied.
   */
  async #copyDirectory(src: string, rel: string, target: string, st: BigIntStats, overwriteMetadata: boolean, included: boolean): Promise<boolean> {
    const created = included ? await makeDirectory(target, st, overwriteMetadata) : false;
    let copiedBelow = false;
    for (const name of readdirSync(src).sort()) {
      if (await this.copy(`${src}/${name}`, rel === "" ? name : `${rel}/${name}`, `${target}/${name}`, true, included)) copiedBelow = true;
    }
    const noIncludes = this.#include === undefined;
    const writeInfo = included ? (overwriteMetadata && noIncludes) || created : copiedBelow;
    if (writeInfo) await this.#copyInfo(src, target, st);
    return included || copiedBelow;
  }

  /** Whether linking the file `st` gives what copying it would: nothing about it is to change. */
  #linkable(st: BigIntStats): boolean {
    const { linkFiles, owner, mode, timestamp } = this.#options;
    if (linkFiles !== true || timestamp !== undefined) return false;
    if (owner !== undefined && (owner.uid !== Number(st.uid) || owner.gid !== Number(st.gid))) return false;
    const current = Number(st.mode & 0o7777n);
    return mode === undefined || mode(current, false) === current;
  }

  /** With include patterns, directories are made only when something inside them is copied. */
  async #ensureParents(target: string): Promise<void> {
    if (this.#include === undefined) return;
    await mkdir(dirname(target), { recursive: true });
  }

  async #copyInfo(src: string, target: string, st: BigIntStats): Promise<void> {
    const { owner, mode, timestamp } = this.#options;
    await lchown(target, owner?.uid ?? Number(st.uid), owner?.gid ?? Number(st.gid));
    if (!st.isSymbolicLink()) {
      const current = Number(st.mode & 0o7777n);
      await chmod(target, mode === undefined ? current : mode(current, st.isDirectory()));
    }
    if (timestamp !== undefined) await lutimes(target, timestamp, timestamp);
    else lutimesNs(target, st.atimeNs, st.mtimeNs);
    copyXattrs(src, target);
  }
}

async function makeDirectory(target: string, st: BigIntStats, overwriteMetadata: boolean): Promise<boolean> {
  const existing = await lstat(target).catch(() => undefined);
  if (existing === undefined) {
    await mkdir(target, { recursive: true });
    await chmod(target, Number(st.mode & 0o7777n));
    return true;
  }
  if (!existing.isDirectory()) throw new FileActionError(`Cannot copy a directory to "${target}": a non-directory is in the way`);
  if (overwriteMetadata) await chmod(target, Number(st.mode & 0o7777n));
  return false;
}

/** Entries copied between two yields to the event loop. */
const YIELD_EVERY = 256;

/** Hard-links `src` as `target`; false when that fails (the caller copies instead). */
function linkedSync(src: string, target: string): boolean {
  try {
    linkSync(src, target);
    return true;
  } catch {
    return false;
  }
}

/** Whether a non-directory is at `target` (the caller removes it); a directory there is an error. */
function fileInTheWay(target: string): boolean {
  const existing = lstatSync(target, { throwIfNoEntry: false });
  if (existing === undefined) return false;
  if (existing.isDirectory()) throw new FileActionError(`Cannot copy a file to "${target}": a directory is in the way`);
  return true;
}

function copyXattrs(src: string, target: string): void {
  let names: string[];
  try {
    names = listXattrs(src);
  } catch {
    return;
  }
  for (const name of names) {
    // Overlay's own bookkeeping is not content; BuildKit logs and ignores xattr errors.
    if (name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")) continue;
    try {
      const value = getXattr(src, name);
      if (value !== undefined) setXattr(target, name, value);
    } catch {
      // Ignored, as BuildKit's xattr error handler does.
    }
  }
}
