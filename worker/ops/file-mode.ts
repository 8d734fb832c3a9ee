import { KilnError } from "../../solver/llb/index.js";

/** A COPY --chmod value that is neither an octal number nor a symbolic mode. */
export class FileModeError extends KilnError {
  constructor(mode: string, why: string) {
    super("KILN_FILE_MODE_INVALID", `Cannot use mode "${mode}": ${why}`);
  }
}

/** Turns an entry's current mode (permission and special bits, `0o7777`) into its new mode. */
export type ModeChange = (current: number, isDirectory: boolean) => number;

/**
 * Compiles a COPY/ADD `--chmod` value: a number sets the permission and special bits outright;
 * a string is a chmod(1) symbolic mode (`u+x`, `go-w,a+X`, `u=rw,g=u`) applied to each entry's
 * own mode, where an empty "who" means all and `X` adds execute only to directories and to
 * files that already have an execute bit. Null keeps modes.
 */
export function compileModeChange(mode: number | string | null): ModeChange | undefined {
  if (mode === null) return undefined;
  if (typeof mode === "number") return () => mode & 0o7777;
  if (/^[0-7]+$/.test(mode)) {
    const value = Number.parseInt(mode, 8);
    return () => value & 0o7777;
  }
  const clauses = mode.split(",").map((clause) => parseClause(mode, clause));
  return (current, isDirectory) => clauses.reduce((m, apply) => apply(m, isDirectory), current & 0o7777);
}

const WHO_BITS = { u: 0o4700, g: 0o2070, o: 0o1007 } as const;

function parseClause(mode: string, clause: string): ModeChange {
  const match = /^([ugoa]*)((?:[-+=][ugo]|[-+=][rwxXst]*)+)$/.exec(clause);
  if (match === null) throw new FileModeError(mode, `"${clause}" is not a symbolic mode clause like "u+x" or "go=r"`);
  const whoText = match[1] === "" || (match[1] as string).includes("a") ? "ugo" : (match[1] as string);
  const who = [...whoText] as ("u" | "g" | "o")[];
  const mask = who.reduce((m, w) => m | WHO_BITS[w], 0);
  const ops = [...(match[2] as string).matchAll(/([-+=])([ugo]|[rwxXst]*)/g)].map((m) => ({ op: m[1] as "-" | "+" | "=", perms: m[2] as string }));
  return (current, isDirectory) => {
    let m = current;
    for (const { op, perms } of ops) {
      const bits = permBits(perms, m, isDirectory, who) & mask;
      if (op === "+") m |= bits;
      else if (op === "-") m &= ~bits;
      else m = (m & ~mask) | bits;
    }
    return m & 0o7777;
  };
}

function permBits(perms: string, current: number, isDirectory: boolean, who: readonly ("u" | "g" | "o")[]): number {
  if (perms === "u" || perms === "g" || perms === "o") {
    const shift = perms === "u" ? 6 : perms === "g" ? 3 : 0;
    const rwx = (current >> shift) & 0o7;
    return (rwx << 6) | (rwx << 3) | rwx;
  }
  let rwx = 0;
  let special = 0;
  for (const p of perms) {
    if (p === "r") rwx |= 4;
    else if (p === "w") rwx |= 2;
    else if (p === "x") rwx |= 1;
    else if (p === "X" && (isDirectory || (current & 0o111) !== 0)) rwx |= 1;
    else if (p === "s") special |= (who.includes("u") ? 0o4000 : 0) | (who.includes("g") ? 0o2000 : 0);
    else if (p === "t") special |= 0o1000;
  }
  return (rwx << 6) | (rwx << 3) | rwx | special;
}
