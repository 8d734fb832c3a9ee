import { readFileSync } from "node:fs";
import { KilnError } from "../../solver/llb/index.js";
import { resolveInRoot } from "../fs/index.js";

/** A process identity: uid, primary gid and supplementary gids. */
export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
}

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** The user in `user` could not be resolved against the tree's passwd/group files. */
export class UserResolveError extends KilnError {
  constructor(message: string) {
    super("KILN_USER_UNKNOWN", message);
  }
}

/**
 * Resolves USER text (`name`, `uid`, `name:group`, `uid:gid`, empty for root) against the
 * /etc/passwd and /etc/group of the tree at `root`, as Docker and runc's GetExecUser do:
 * - a name must be in passwd; a number need not be (its gid is then 0);
 * - without an explicit group, the primary gid comes from passwd and the supplementary gids are
 *   the groups that list the user by name as a member;
 * - an explicit group (name or number) replaces the primary gid and brings no supplementary
 *   groups; a group name must be in /etc/group.
 * Missing files count as empty. Paths are resolved inside `root` (symlinks cannot escape it).
 */
export function resolveRootfsUser(root: string, user: string): ResolvedUser {
  const text = user.trim();
  if (text === "") return resolveRootfsUser(root, "0");
  const colon = text.indexOf(":");
  const userPart = colon === -1 ? text : text.slice(0, colon);
  const groupPart = colon === -1 ? undefined : text.slice(colon + 1);
  const passwd = parsePasswd(readTreeFile(root, "/etc/passwd"));

  const numericUser = parseId(userPart);
  let entry: PasswdEntry | undefined;
  if (numericUser === undefined) {
    entry = passwd.find((p) => p.name === userPart);
    if (entry === undefined) throw new UserResolveError(`Cannot resolve user "${userPart}": no matching entry in /etc/passwd`);
  } else {
    entry = passwd.find((p) => p.uid === numericUser);
  }
  const uid = numericUser ?? (entry as PasswdEntry).uid;
  let gid = entry?.gid ?? 0;

  const groups = () => parseGroup(readTreeFile(root, "/etc/group"));
  if (groupPart !== undefined && groupPart !== "") {
    const numericGroup = parseId(groupPart);
    if (numericGroup !== undefined) return { uid, gid: numericGroup, additionalGids: [] };
    const group = groups().find((g) => g.name === groupPart);
    if (group === undefined) throw new UserResolveError(`Cannot resolve group "${groupPart}": no matching entry in /etc/group`);
    return { uid, gid: group.gid, additionalGids: [] };
  }
  if (entry === undefined) return { uid, gid, additionalGids: [] };
  const name = entry.name;
  const additional = groups().filter((g) => g.members.includes(name)).map((g) => g.gid);
  gid = entry.gid;
  return { uid, gid, additionalGids: [...new Set(additional)] };
}

/** Resolves a user name to a uid in the tree's /etc/passwd, or a group name in /etc/group (for COPY --chown). */
export function lookupId(root: string, kind: "user" | "group", name: string): number {
  if (kind === "user") {
    const entry = parsePasswd(readTreeFile(root, "/etc/passwd")).find((p) => p.name === name);
    if (entry === undefined) throw new UserResolveError(`Cannot resolve user "${name}": no matching entry in /etc/passwd`);
    return entry.uid;
  }
  const entry = parseGroup(readTreeFile(root, "/etc/group")).find((g) => g.name === name);
  if (entry === undefined) throw new UserResolveError(`Cannot resolve group "${name}": no matching entry in /etc/group`);
  return entry.gid;
}

/** The primary gid passwd gives `uid`, or undefined when `uid` is not listed. */
export function primaryGid(root: string, uid: number): number | undefined {
  return parsePasswd(readTreeFile(root, "/etc/passwd")).find((p) => p.uid === uid)?.gid;
}

function parseId(text: string): number | undefined {
  return /^[0-9]+$/.test(text) ? Number(text) : undefined;
}

function readTreeFile(root: string, path: string): string {
  try {
    return readFileSync(resolveInRoot(root, path), "utf8");
  } catch {
    return "";
  }
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const [name, , uid, gid] = line.split(":");
    const u = parseId(uid ?? "");
    const g = parseId(gid ?? "");
    if (name !== undefined && u !== undefined && g !== undefined) out.push({ name, uid: u, gid: g });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const [name, , gid, members] = line.split(":");
    const g = parseId(gid ?? "");
    if (name === undefined || g === undefined) continue;
    out.push({ name, gid: g, members: (members ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "") });
  }
  return out;
}
