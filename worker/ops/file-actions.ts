import { chmod, lchown, lstat, lutimes, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Chown, MkdirAction, MkfileAction, RmAction, UserRef } from "../../solver/llb/index.js";
import { lookupId, primaryGid } from "../executor/index.js";
import { cleanAbsolute, resolveInRoot } from "../fs/index.js";
import { FileActionError, mkdirAll, resolveWildcards, type Owner } from "./fs-copy.js";

/**
 * The uid and gid a file action's owner names, resolved against the tree at `root` (its
 * /etc/passwd and /etc/group), as BuildKit's readUser does: a user by name takes its uid and
 * primary gid from passwd; a user by id alone gets that id as gid too; a group, when given,
 * replaces the gid. Null: no owner change.
 */
export function resolveOwner(root: string, chown: Chown | null): Owner | undefined {
  if (chown === null) return undefined;
  let uid = 0;
  let gid = 0;
  const user: UserRef = chown.user;
  if ("id" in user) {
    uid = user.id;
    gid = user.id;
  } else {
    uid = lookupId(root, "user", user.name);
    gid = primaryGidOf(root, user.name);
  }
  if (chown.group !== null) gid = "id" in chown.group ? chown.group.id : lookupId(root, "group", chown.group.name);
  return { uid, gid };
}

function primaryGidOf(root: string, name: string): number {
  return primaryGid(root, lookupId(root, "user", name)) ?? 0;
}

/** MKDIR: `makeParents` creates missing parents (all with `mode`); an existing directory is fine. */
export async function applyMkdir(root: string, action: MkdirAction): Promise<void> {
  const host = resolveInRoot(root, action.path);
  const owner = resolveOwner(root, action.owner);
  if (action.makeParents) {
    await mkdirAll(host, action.mode & 0o777, owner, action.timestamp);
    return;
  }
  try {
    await mkdir(host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    if (code === "ENOENT") throw new FileActionError(`Cannot create directory "${action.path}": its parent does not exist`, { cause: error });
    throw error;
  }
  await chmod(host, action.mode & 0o777 & ~0o022);
  if (owner !== undefined) await lchown(host, owner.uid, owner.gid);
  if (action.timestamp !== undefined) await lutimes(host, action.timestamp, action.timestamp);
}

/** MKFILE: writes (or truncates and rewrites) the file with `data`. */
export async function applyMkfile(root: string, action: MkfileAction): Promise<void> {
  const host = resolveInRoot(root, cleanAbsolute(action.path));
  const owner = resolveOwner(root, action.owner);
  try {
    await writeFile(host, Buffer.from(action.data, "base64"), { mode: action.mode & 0o777 & ~0o022 });
  } catch (error) {
    throw new FileActionError(`Cannot create file "${action.path}": ${(error as Error).message}`, { cause: error });
  }
  if (owner !== undefined) await lchown(host, owner.uid, owner.gid);
  if (action.timestamp !== undefined) await lutimes(host, action.timestamp, action.timestamp);
}

/**
 * RM: removes the path (recursively; a symlink itself, never its target). With `allowWildcard`
 * the path is a pattern and every match goes; `allowNotFound` makes a missing path no error.
 */
export async function applyRm(root: string, action: RmAction): Promise<void> {
  const paths = action.allowWildcard ? resolveWildcards(root, action.path, false) : [action.path];
  for (const path of paths) {
    const clean = cleanAbsolute(path);
    if (clean === "/") throw new FileActionError(`Cannot remove "${action.path}": it is the root of the tree`);
    const host = join(resolveInRoot(root, dirname(clean)), basename(clean));
    if (!action.allowNotFound) {
      const found = (await stat(host).catch(() => undefined)) ?? (await lstat(host).catch(() => undefined));
      if (found === undefined) throw new FileActionError(`Cannot remove "${path}": it does not exist`);
    }
    await rm(host, { recursive: true, force: true });
  }
}
