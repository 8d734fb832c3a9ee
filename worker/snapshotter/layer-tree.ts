import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, readlinkSync, rmSync, utimesSync, type Stats } from "node:fs";
import { getXattr, listXattrs, setXattr } from "../syscalls.js";
import { hostPath, resolveComponents, type PathEntry } from "../fs/index.js";

/** Why an entry was refused; the caller turns it into a LayerError naming the layer and the entry. */
export class UnsafePathError extends Error {}

/**
 * Splits a tar entry name into root-relative components. `.` and empty components are dropped and
 * `..` is applied lexically (Go's filepath.Clean, as containerd does); a name that is absolute or
 * whose `..` would climb above the root is refused, since no layer writer produces one and a
 * naive extractor would write outside. The root itself is `[]`.
 */
export function entryComponents(name: string): string[] {
  if (name.startsWith("/")) throw new UnsafePathError("it is an absolute path");
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") parts.push(part);
    else if (parts.pop() === undefined) throw new UnsafePathError('its ".." climbs above the root');
  }
  return parts;
}

export interface LayerTreeOptions {
  /** The lower layers' directories, topmost first (an overlay snapshot's lowerdirs); none for a full tree. */
  readonly lowers?: readonly string[];
  /** `upper` holds overlay whiteouts (0:0 character devices) and opaque markers. */
  readonly overlay: boolean;
  /** Opaque markers are `user.overlay.opaque` (else `trusted.overlay.opaque`). */
  readonly userxattr?: boolean;
}

/**
 * The tree a layer is applied onto: the directory `upper` that receives every write, seen through
 * the lowers below it as overlayfs shows them (upper first, a whiteout hides what is below, an
 * opaque directory hides the lowers' directory, a directory merges only with directories).
 *
 * `directory(parts)` resolves an entry's parent as containerd's apply does, inside the root:
 * symlinks are followed wherever they live (a lower's `var/run -> /run` sends `var/run/x` to
 * `run/x`), an absolute target restarts at the root and `..` stops there, so nothing outside the
 * layers is ever named. Directories the merged view has only in a lower are created in `upper`
 * with the lower's owner, mode and times (containerd's mkparent); missing ones with 0755 root.
 *
 * Resolved directories are cached; `forget()` must be called after anything that can change the
 * merged view of a directory: removing or replacing one, a whiteout, a symlink, an opaque marker.
 */
export class LayerTree {
  readonly upper: string;
  readonly #lowers: readonly string[];
  readonly #overlay: boolean;
  readonly #opaqueXattr: string;
  /** Root-relative directory → the layer roots where it is a directory, topmost first ("" is the root). */
  readonly #stacks = new Map<string, readonly string[]>();
  /** An entry's parent as written → its resolved root-relative path. */
  readonly #parents = new Map<string, string>();

  constructor(upper: string, options: LayerTreeOptions) {
    this.upper = upper;
    this.#lowers = options.lowers ?? [];
    this.#overlay = options.overlay;
    this.#opaqueXattr = options.userxattr === true ? "user.overlay.opaque" : "trusted.overlay.opaque";
  }

  forget(): void {
    this.#stacks.clear();
    this.#parents.clear();
  }

  /** The real directory in `upper` (absolute and root-relative) that an entry's parent `parts` names, created when missing. */
  directory(parts: readonly string[]): { abs: string; rel: string } {
    const written = parts.join("/");
    let rel = this.#parents.get(written);
    if (rel === undefined) {
      rel = resolveComponents(parts, (p) => this.#ensureDirectory(p)).join("/");
      this.#parents.set(written, rel);
    }
    return { abs: rel === "" ? this.upper : `${this.upper}/${rel}`, rel };
  }

  /**
   * Where the entry at root-relative `rel` (a resolved parent plus a name) lives in the merged
   * view: `upper` or the topmost lower holding it, or undefined when missing or whited out.
   */
  find(parentRel: string, name: string): { abs: string; stats: Stats } | undefined {
    const found = this.#child(this.#stack(parentRel), parentRel, name);
    return found.layer === undefined ? undefined : { abs: join2(found.layer, parentRel, name), stats: found.stats as Stats };
  }

  /** Copies a lower's regular file into `upper` at the same place (overlay's copy-up), for a hardlink to it. */
  copyUp(lowerAbs: string, stats: Stats, upperAbs: string): void {
    copyFileSync(lowerAbs, upperAbs);
    chownSync(upperAbs, stats.uid, stats.gid);
    for (const name of listXattrs(lowerAbs)) {
      const value = getXattr(lowerAbs, name);
      if (value !== undefined && !name.includes(".overlay.")) setXattr(upperAbs, name, value);
    }
    copyMetadata(upperAbs, stats);
  }

  /** resolveComponents' lookup: every component it meets on a parent path must become a directory in `upper`. */
  #ensureDirectory(parts: readonly string[]): PathEntry {
    const name = parts.at(-1) as string;
    const parentRel = parts.slice(0, -1).join("/");
    const rel = parts.join("/");
    if (this.#stacks.has(rel)) return { kind: "directory" };
    const parentStack = this.#stack(parentRel);
    const found = this.#child(parentStack, parentRel, name);
    const upperAbs = join2(this.upper, parentRel, name);
    if (found.layer !== undefined && !found.stats?.isDirectory()) {
      if (found.stats?.isSymbolicLink() === true) {
        return { kind: "symlink", target: readlinkSync(join2(found.layer, parentRel, name)) };
      }
      throw new UnsafePathError(`its parent "${rel}" is not a directory`);
    }
    if (found.dirs[0] !== this.upper) {
      // Not yet a directory in upper: make it there, over whatever upper held (a whiteout).
      const replacedWhiteout = lstatOrUndefined(upperAbs) !== undefined;
      if (replacedWhiteout) rmSync(upperAbs, { force: true });
      const template = found.dirs[0];
      mkdirSync(upperAbs, { mode: 0o755 });
      if (template !== undefined) copyMetadata(upperAbs, lstatSync(join2(template, parentRel, name)));
      // A directory made where upper had a whiteout replaces what the lowers had there.
      if (replacedWhiteout && this.#lowers.length > 0) setXattr(upperAbs, this.#opaqueXattr, Buffer.from("y"));
      this.#stacks.set(rel, replacedWhiteout ? [this.upper] : [this.upper, ...found.dirs]);
    } else {
      this.#stacks.set(rel, found.dirs);
    }
    return { kind: "directory" };
  }

  /** The layer roots where resolved directory `rel` is a directory (it was resolved before, or is the root). */
  #stack(rel: string): readonly string[] {
    const known = this.#stacks.get(rel);
    if (known !== undefined) return known;
    if (rel !== "") {
      // Resolved by an earlier walk whose cache was since forgotten: look it up again.
      const parts = rel.split("/");
      resolveComponents(parts, (p) => this.#ensureDirectory(p));
      return this.#stacks.get(rel) ?? [this.upper];
    }
    const roots = [this.upper, ...this.#lowers];
    const stack: string[] = [];
    for (const root of roots) {
      stack.push(root);
      if (this.#isOpaque(root)) break;
    }
    this.#stacks.set("", stack);
    return stack;
  }

  /**
   * Looks `name` up in a directory's stack as overlayfs does: the topmost layer holding it decides
   * its kind; a directory also gathers the directories below it until an opaque one or a non-directory.
   */
  #child(stack: readonly string[], parentRel: string, name: string): { layer: string | undefined; stats: Stats | undefined; dirs: string[] } {
    const dirs: string[] = [];
    let first: { layer: string; stats: Stats } | undefined;
    for (const layer of stack) {
      const stats = lstatOrUndefined(join2(layer, parentRel, name));
      if (stats === undefined) continue;
      if (this.#overlay && stats.isCharacterDevice() && stats.rdev === 0) break;
      if (!stats.isDirectory()) {
        if (first === undefined) first = { layer, stats };
        break;
      }
      first ??= { layer, stats };
      dirs.push(layer);
      if (this.#lowers.length > 0 && this.#isOpaque(join2(layer, parentRel, name))) break;
    }
    return { layer: first?.layer, stats: first?.stats, dirs };
  }

  #isOpaque(abs: string): boolean {
    return this.#overlay && getXattr(abs, this.#opaqueXattr)?.toString() === "y";
  }
}

function join2(root: string, parentRel: string, name: string): string {
  return hostPath(root, parentRel === "" ? [name] : [parentRel, name]);
}

function lstatOrUndefined(abs: string): Stats | undefined {
  try {
    return lstatSync(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw error;
  }
}

/** Owner, mode and times of `stats` onto `abs` (owner first: chown clears set-id bits). */
function copyMetadata(abs: string, stats: Stats): void {
  chownSync(abs, stats.uid, stats.gid);
  chmodSync(abs, stats.mode & 0o7777);
  utimesSync(abs, stats.atime, stats.mtime);
}
