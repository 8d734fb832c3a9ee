import { lstatSync, readlinkSync } from "node:fs";
import { KilnError } from "../../solver/llb/index.js";

/**
 * Linux's limit on symlinks followed in one lookup is 40; containerd's RootPath allows 255. Either
 * way a loop ends in an error instead of spinning.
 */
const MAX_SYMLINKS = 255;

/** What a tree holds at a path whose every parent is a real directory, as `lookup` reports it. */
export type PathEntry =
  | { readonly kind: "directory" }
  | { readonly kind: "symlink"; readonly target: string }
  | { readonly kind: "other" }
  | { readonly kind: "missing" };

/** Too many symlinks on the way to resolve a path (a loop, usually). */
export class SymlinkLoopError extends KilnError {
  constructor(path: string) {
    super("KILN_PATH_SYMLINK_LOOP", `Cannot resolve "${path}": too many levels of symbolic links`);
  }
}

/**
 * Resolves `path` inside a tree as the kernel would after chroot into it (containerd continuity's
 * RootPath): an absolute symlink target restarts at the tree's root, `..` never climbs above the
 * root, so the result names a place inside the tree whatever the tree holds. Returns the
 * resolved components: every one but (with `followLast: false`) the last is a directory or a
 * missing name, never a symlink.
 *
 * `lookup(parts)` describes the entry at `parts`, whose every earlier component is a directory
 * `lookup` already reported. It may have side effects (layer apply creates missing parents
 * there and reports them as directories). A missing or non-directory component is kept as it is
 * and resolution goes on past it literally, as the runtime would create it.
 */
export function resolveComponents(
  path: string | readonly string[],
  lookup: (parts: readonly string[]) => PathEntry,
  options: { readonly followLast?: boolean } = {},
): string[] {
  const followLast = options.followLast ?? true;
  const pending = typeof path === "string" ? splitPath(path) : [...path];
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    resolved.push(part);
    if (pending.length === 0 && !followLast) break;
    const entry = lookup(resolved);
    if (entry.kind !== "symlink") continue;
    if (++links > MAX_SYMLINKS) throw new SymlinkLoopError(typeof path === "string" ? path : path.join("/"));
    resolved.pop();
    if (entry.target.startsWith("/")) resolved.length = 0;
    pending.unshift(...splitPath(entry.target));
  }
  return resolved;
}

/**
 * The host path of `path` inside the tree at `root`, with every symlink on the way evaluated as if
 * `root` were `/` (see resolveComponents): the result is always `root` or below it. With
 * `followLast: false` the final component is not followed (lstat semantics). Components that do
 * not exist are appended as they are.
 */
export function resolveInRoot(root: string, path: string, options: { readonly followLast?: boolean } = {}): string {
  return hostPath(root, resolveComponents(path, (parts) => lstatEntry(hostPath(root, parts)), options));
}

/** What `host` is, without following a symlink there. */
export function lstatEntry(host: string): PathEntry {
  let stats;
  try {
    stats = lstatSync(host);
  } catch {
    return { kind: "missing" };
  }
  if (stats.isSymbolicLink()) return { kind: "symlink", target: readlinkSync(host) };
  return stats.isDirectory() ? { kind: "directory" } : { kind: "other" };
}

/** `path`'s components, without empty ones and `.`. */
export function splitPath(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}

/** `path` made absolute and clean (Go's filepath.Clean of "/" + path). */
export function cleanAbsolute(path: string): string {
  const out: string[] = [];
  for (const part of splitPath(path)) {
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}

/** `root` joined with root-relative components (`root` itself for none). */
export function hostPath(root: string, parts: readonly string[]): string {
  const base = root.endsWith("/") && root.length > 1 ? root.slice(0, -1) : root;
  return parts.length === 0 ? base : `${base}/${parts.join("/")}`;
}
