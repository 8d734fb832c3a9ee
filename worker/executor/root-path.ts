import { lstatSync, readlinkSync } from "node:fs";
import { KilnError } from "../../solver/llb/index.js";

const MAX_SYMLINKS = 255;

/**
 * The host path of `path` inside the tree at `root`, with every symlink on the way evaluated as
 * if `root` were `/` (containerd continuity's RootPath): an absolute link target restarts at
 * `root`, and `..` never climbs above it, so the result is always under `root`. With
 * `followLast: false` the final component is not followed (lstat semantics). Components that do
 * not exist are appended as they are.
 */
export function resolveInRoot(root: string, path: string, options: { followLast?: boolean } = {}): string {
  const followLast = options.followLast ?? true;
  const pending = splitPath(path);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const host = hostPath(root, candidate);
    if (pending.length === 0 && !followLast) {
      resolved.push(part);
      break;
    }
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      // Missing: the rest is taken literally.
      resolved.push(part);
      continue;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new KilnError("KILN_PATH_SYMLINK_LOOP", `Cannot resolve "${path}": too many levels of symbolic links`);
    const target = readlinkSync(host);
    if (target.startsWith("/")) resolved.length = 0;
    pending.unshift(...splitPath(target));
  }
  return hostPath(root, resolved);
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

function hostPath(root: string, parts: readonly string[]): string {
  const base = root.endsWith("/") && root.length > 1 ? root.slice(0, -1) : root;
  return parts.length === 0 ? base : `${base}/${parts.join("/")}`;
}
