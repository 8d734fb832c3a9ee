import { readFileSync } from "node:fs";

/**
 * Who owns a piece of state a build leaves on disk while it runs (a writable snapshot, a mount
 * point, a runc container): `<pid>.<start>`, where `start` is the process's start time in clock
 * ticks since boot (/proc/PID/stat field 22). The start time tells a live owner from a dead one
 * whose pid was reused, so the next kiln on the same state root can clean up after a SIGKILLed one
 * without touching what a concurrent, live kiln holds.
 *
 * The tag uses only `[0-9.]`, so it fits in file names and runc container ids.
 */
export type OwnerTag = string;

let current: OwnerTag | undefined;

/** This process's owner tag. */
export function ownerTag(): OwnerTag {
  current ??= `${process.pid}.${processStart(process.pid) ?? 0}`;
  return current;
}

/**
 * Whether the process that wrote `tag` is still running. An unparsable tag counts as alive
 * (unknown state is never removed); a pid that no longer exists, or exists with another start
 * time, is dead.
 */
export function ownerAlive(tag: string): boolean {
  const match = /^(\d+)\.(\d+)$/.exec(tag);
  if (match === null) return true;
  const start = processStart(Number(match[1]));
  return start !== undefined && (match[2] === "0" || String(start) === match[2]);
}

/** Finds the owner tag inside a name such as `run-<tag>-abc123` or `kiln-<tag>-ff00`; undefined when it has none. */
export function ownerInName(name: string): OwnerTag | undefined {
  return /-(\d+\.\d+)-/.exec(name)?.[1];
}

function processStart(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}
