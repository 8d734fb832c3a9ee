import { readFileSync } from "node:fs";

/**
 * Whether this process runs inside a user namespace that does not map the whole uid range, read
 * from /proc/self/uid_map (the initial namespace maps `0 0 4294967295`). Overlay mounts made there
 * need `userxattr`: without it the mount succeeds, but every directory rename fails with EXDEV.
 */
export function inUserNamespace(uidMapPath = "/proc/self/uid_map"): boolean {
  let text: string;
  try {
    text = readFileSync(uidMapPath, "utf8");
  } catch {
    return false;
  }
  const lines = text.split("\n").map((l) => l.trim().split(/\s+/).join(" ")).filter((l) => l !== "");
  return !(lines.length === 1 && lines[0] === "0 0 4294967295");
}
