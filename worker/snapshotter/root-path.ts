import { lstat, mkdir, readlink } from "node:fs/promises";
import { join } from "node:path";

/** Why a path was refused; the caller turns it into a LayerError naming the layer and the entry. */
export class UnsafePathError extends Error {}

/** How many symlinks one lookup may follow before it is treated as a loop (Linux's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

/**
 * Splits a tar entry name into path components, refusing what could escape a root: an absolute
 * path and any `..` component (even one that would stay inside after cleaning: no legitimate
 * layer writer produces one). `.` components and empty ones (`a//b`, a trailing `/`) are dropped;
 * the root itself is `[]`.
 */
export function entryComponents(name: string): string[] {
  if (name.startsWith("/")) throw new UnsafePathError("it is an absolute path");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UnsafePathError("it contains a \"..\" component");
  return parts;
}

/**
 * Resolves directories inside `root` without ever leaving it. Missing directories are created
 * (mode 0755, as containerd does for parents a layer does not list). A symlink met on the way is
 * followed only when it is relative and its target stays inside the root, as the kernel would
 * resolve it from the root's own point of view; an absolute symlink or one that climbs out is
 * refused, so nothing is ever written outside `root`. The final component of a path is never
 * followed: callers replace or create it themselves.
 *
 * Directories already verified are cached by their relative path; `forget()` must be called when
 * a directory is removed or replaced.
 */
export class RootResolver {
  readonly root: string;
  private readonly known = new Set<string>([""]);

  constructor(root: string) {
    this.root = root;
  }

  /** Forgets every verified directory (after a directory was removed or replaced). */
  forget(): void {
    this.known.clear();
    this.known.add("");
  }

  /** Records that `rel` is a real directory inside the root. */
  remember(rel: string): void {
    this.known.add(rel);
  }

  /** The real directory (absolute and root-relative, symlinks resolved) that `parts` names, created when missing. */
  async directory(parts: readonly string[]): Promise<{ abs: string; rel: string }> {
    const direct = parts.join("/");
    if (this.known.has(direct)) return { abs: join(this.root, direct), rel: direct };
    const resolved: string[] = [];
    const pending = [...parts];
    let links = 0;
    let lastLink = "";
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === "..") {
        // Only symlink targets bring ".." here; it climbs from the symlink's directory.
        if (resolved.pop() === undefined) throw new UnsafePathError(`it would be written through the symlink ${lastLink}, which leads out of the root`);
        continue;
      }
      const rel = [...resolved, part].join("/");
      if (this.known.has(rel)) {
        resolved.push(part);
        continue;
      }
      const abs = join(this.root, rel);
      const stats = await lstat(abs).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined;
        throw error;
      });
      if (stats === undefined) {
        await mkdir(abs, { mode: 0o755 });
      } else if (stats.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw new UnsafePathError(`too many symlinks are followed to resolve "${rel}"`);
        const target = await readlink(abs);
        if (target.startsWith("/")) throw new UnsafePathError(`it would be written through the absolute symlink "${rel}" -> "${target}"`);
        lastLink = `"${rel}" -> "${target}"`;
        pending.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
        continue;
      } else if (!stats.isDirectory()) {
        throw new UnsafePathError(`its parent "${rel}" is not a directory`);
      }
      resolved.push(part);
      this.known.add(resolved.join("/"));
    }
    const rel = resolved.join("/");
    return { abs: join(this.root, rel), rel };
  }
}
