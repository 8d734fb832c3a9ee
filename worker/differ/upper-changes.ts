import { lstatSync, readdirSync } from "node:fs";
import { getXattr } from "../syscalls.js";
import { type Change, joinRel } from "./changes.js";
import { compareBytes } from "./tar-entry.js";

const OPAQUE_XATTRS = ["trusted.overlay.opaque", "user.overlay.opaque"] as const;

/**
 * The changes recorded in an overlay upperdir, read from the upperdir alone (never the merged
 * tree): a 0:0 character device is a deletion, a directory with an overlay opaque xattr (trusted
 * or user namespace) replaced the lower one, everything else is an entry. Siblings come in byte
 * order, each directory before its contents. Synchronous readdir and lstat (a thread-pool round
 * trip per entry costs more than the syscall), and a synchronous generator: the diff takes
 * 20,000 small files without a promise per entry.
 */
export function* upperChanges(upper: string, rel = ""): Generator<Change> {
  const dir = rel === "" ? upper : `${upper}/${rel}`;
  for (const name of readdirSync(dir).sort(compareBytes)) {
    const path = joinRel(rel, name);
    const abs = `${upper}/${path}`;
    const stats = lstatSync(abs, { bigint: true });
    if (stats.isCharacterDevice() && stats.rdev === 0n) {
      yield { kind: "whiteout", rel: path, mtime: 0 };
      continue;
    }
    yield { kind: "entry", rel: path, abs, stats };
    if (stats.isDirectory()) {
      if (isOpaque(abs)) yield { kind: "opaque", rel: path, mtime: 0 };
      yield* upperChanges(upper, path);
    }
  }
}

function isOpaque(abs: string): boolean {
  return OPAQUE_XATTRS.some((name) => {
    try {
      return getXattr(abs, name)?.toString("latin1") === "y";
    } catch {
      // trusted.* is unreadable in a user namespace: then it is not what marks opacity there.
      return false;
    }
  });
}
