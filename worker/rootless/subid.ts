import { readFileSync } from "node:fs";
import { KilnError } from "../../solver/llb/index.js";

/** One `/etc/subuid` or `/etc/subgid` line: `owner` (a name or a numeric id) may use `count` ids from `start`. */
export interface SubordinateRange {
  readonly owner: string;
  readonly start: number;
  readonly count: number;
}

/** Whom the ranges are for: both the name and the numeric id may own a line (shadow-utils accepts either). */
export interface SubidUser {
  readonly name: string;
  readonly id: number;
}

/** The size of the range useradd gives a new user (SUB_UID_COUNT in login.defs), and BuildKit's minimum. */
export const SUBID_COUNT = 65536;
/** Where useradd starts allocating (SUB_UID_MIN). */
const SUBID_MIN = 100000;

/** Rootless kiln cannot start: no subordinate ids for the user, or no way to map them. */
export class RootlessError extends KilnError {
  constructor(code: "KILN_ROOTLESS_NO_SUBID" | "KILN_ROOTLESS_UNAVAILABLE", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Parses subuid/subgid text; malformed and comment lines are skipped, as shadow-utils does. */
export function parseSubordinateIds(text: string): SubordinateRange[] {
  const ranges: SubordinateRange[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(":");
    if (fields.length !== 3 || fields[0] === "" || fields[0]?.startsWith("#") === true) continue;
    const start = Number(fields[1]);
    const count = Number(fields[2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count <= 0) continue;
    ranges.push({ owner: fields[0] as string, start, count });
  }
  return ranges;
}

/** The ranges of `text` that belong to `user` (by name or by id). */
export function rangesOf(text: string, user: SubidUser): SubordinateRange[] {
  return parseSubordinateIds(text).filter((r) => r.owner === user.name || r.owner === String(user.id));
}

/**
 * The first `count`-sized start at or above 100000, aligned to `count`, that overlaps no range in
 * `texts` (what useradd would pick): the line kiln suggests when a user has none.
 */
export function freeRangeStart(texts: readonly string[], count = SUBID_COUNT): number {
  const taken = texts.flatMap(parseSubordinateIds);
  let start = SUBID_MIN;
  for (;;) {
    const end = start + count;
    const clash = taken.find((r) => r.start < end && start < r.start + r.count);
    if (clash === undefined) return start;
    start = Math.ceil((clash.start + clash.count) / count) * count;
  }
}

/** Where the subordinate id files live; tests point them elsewhere. */
export interface SubidFiles {
  readonly subuid: string;
  readonly subgid: string;
}

const SYSTEM_FILES: SubidFiles = { subuid: "/etc/subuid", subgid: "/etc/subgid" };

/**
 * Checks that `user` owns at least one subordinate uid range and one gid range, which `unshare
 * --map-auto` needs (through the setuid newuidmap/newgidmap). Throws RootlessError saying exactly
 * which line to add to which file otherwise.
 */
export function assertSubordinateIds(user: SubidUser, files: SubidFiles = SYSTEM_FILES): void {
  const uidText = readOrEmpty(files.subuid);
  const gidText = readOrEmpty(files.subgid);
  const missing = [
    ...(rangesOf(uidText, user).length === 0 ? [files.subuid] : []),
    ...(rangesOf(gidText, user).length === 0 ? [files.subgid] : []),
  ];
  if (missing.length === 0) return;
  const start = freeRangeStart([uidText, gidText]);
  const line = `${user.name}:${start}:${SUBID_COUNT}`;
  const range = `${start}-${start + SUBID_COUNT - 1}`;
  const usermod = [
    ...(missing.includes(files.subuid) ? [`--add-subuids ${range}`] : []),
    ...(missing.includes(files.subgid) ? [`--add-subgids ${range}`] : []),
  ];
  throw new RootlessError(
    "KILN_ROOTLESS_NO_SUBID",
    `Cannot run kiln rootless: user "${user.name}" (uid ${user.id}) has no subordinate id range in ${missing.join(" and ")}; ` +
      `add the line "${line}" to ${missing.join(" and to ")} (as root: usermod ${usermod.join(" ")} ${user.name})`,
  );
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
