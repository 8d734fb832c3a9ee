import { existsSync, lstatSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, symlink, unlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { listContext } from "./context-listing.js";
import { ContextSync, SyncEscapeError, validateListing } from "./context-sync.js";
import type { SyncEntry } from "./protocol.js";

let dir: string;
let src: string;
let kept: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-sync-"));
  src = join(dir, "src");
  kept = join(dir, "kept");
  await mkdir(join(src, "app"), { recursive: true });
  await writeFile(join(src, "Dockerfile"), "FROM scratch\nCOPY . /\n");
  await writeFile(join(src, "app/main.sh"), "echo hi\n", { mode: 0o644 });
  await writeFile(join(src, "app/lib.sh"), "lib\n");
  await symlink("app/main.sh", join(src, "link"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One client-to-daemon sync of `src` into `kept`, in one process: the files asked for, and what moved. */
async function syncOnce(): Promise<{ wanted: string[]; bytes: number; files: number; deleted: number }> {
  const listing = await listContext(src, join(src, "Dockerfile"));
  const sync = await ContextSync.open(kept);
  sync.add(listing.entries);
  const wanted = await sync.plan();
  for (const path of wanted) {
    await sync.beginFile(path);
    await sync.write(await readFile(listing.files.get(path)!));
  }
  return { wanted, ...(await sync.finish()) };
}

const tree = (path: string): string => join(kept, "tree", "context", path);

describe("ContextSync", () => {
  test("a first sync asks for every file; a rebuild after changing one file asks for only that file", async () => {
    const first = await syncOnce();
    expect(first.wanted.sort()).toEqual(["context/Dockerfile", "context/app/lib.sh", "context/app/main.sh", "dockerfile/Dockerfile"]);
    expect(await readFile(tree("app/main.sh"), "utf8")).toBe("echo hi\n");
    expect(await readFile(join(kept, "tree/dockerfile/Dockerfile"), "utf8")).toBe("FROM scratch\nCOPY . /\n");

    const unchanged = await syncOnce();
    expect(unchanged.wanted).toEqual([]);
    expect(unchanged.bytes).toBe(0);

    await writeFile(join(src, "app/lib.sh"), "lib, changed\n");
    const second = await syncOnce();
    expect(second.wanted).toEqual(["context/app/lib.sh"]);
    expect(second.bytes).toBe("lib, changed\n".length);
    expect(await readFile(tree("app/lib.sh"), "utf8")).toBe("lib, changed\n");
  });

  test("keeps modes and nanosecond mtimes of files and directories", async () => {
    await utimes(join(src, "app"), 1_000_000, 1_000_000.123456);
    await syncOnce();
    const source = statSync(join(src, "app/main.sh"), { bigint: true });
    const copy = statSync(tree("app/main.sh"), { bigint: true });
    expect(copy.mtimeNs).toBe(source.mtimeNs);
    expect(statSync(tree("app"), { bigint: true }).mtimeNs).toBe(statSync(join(src, "app"), { bigint: true }).mtimeNs);
    expect(Number(copy.mode & 0o7777n)).toBe(0o644);
  });

  test("a deleted file and a deleted directory are gone from the kept copy", async () => {
    await syncOnce();
    await unlink(join(src, "app/lib.sh"));
    await rm(join(src, "link"));
    const second = await syncOnce();
    expect(second.deleted).toBe(2);
    expect(existsSync(tree("app/lib.sh"))).toBe(false);
    expect(existsSync(tree("link"))).toBe(false);
    await rm(join(src, "app"), { recursive: true });
    await syncOnce();
    expect(existsSync(tree("app"))).toBe(false);
  });

  test("a mode-only change and a symlink retarget propagate without content travelling", async () => {
    await syncOnce();
    await chmod(join(src, "app/main.sh"), 0o755);
    await unlink(join(src, "link"));
    await symlink("app/lib.sh", join(src, "link"));
    const second = await syncOnce();
    expect(second.wanted).toEqual([]);
    expect(statSync(tree("app/main.sh")).mode & 0o777).toBe(0o755);
    expect(await readlink(tree("link"))).toBe("app/lib.sh");
  });

  test("an entry that changes type (a directory becomes a file, a symlink a directory) is replaced", async () => {
    await syncOnce();
    await rm(join(src, "app"), { recursive: true });
    await writeFile(join(src, "app"), "now a file\n");
    await unlink(join(src, "link"));
    await mkdir(join(src, "link"));
    await writeFile(join(src, "link/inside"), "x");
    const second = await syncOnce();
    expect(second.wanted.sort()).toEqual(["context/app", "context/link/inside"]);
    expect(await readFile(tree("app"), "utf8")).toBe("now a file\n");
    expect(lstatSync(tree("link")).isDirectory()).toBe(true);
    expect(await readFile(tree("link/inside"), "utf8")).toBe("x");
  });

  test("a sync that did not finish leaves no manifest: the next one starts from an empty tree", async () => {
    await syncOnce();
    const listing = await listContext(src, join(src, "Dockerfile"));
    const sync = await ContextSync.open(kept);
    sync.add(listing.entries);
    await sync.plan();
    await sync.abandon();
    await writeFile(tree("stray"), "left by a crash");
    const next = await syncOnce();
    expect(next.wanted).toHaveLength(4);
    expect(existsSync(tree("stray"))).toBe(false);
  });

  test("refuses file content the daemon did not ask for", async () => {
    await syncOnce();
    const listing = await listContext(src, join(src, "Dockerfile"));
    const sync = await ContextSync.open(kept);
    sync.add(listing.entries);
    expect(await sync.plan()).toEqual([]);
    await expect(sync.beginFile("context/app/main.sh")).rejects.toThrow(/did not ask for it/);
  });

  test("a listing entry that escapes is refused before anything is written", async () => {
    const sync = await ContextSync.open(kept);
    sync.add([dirEntry("context"), fileEntry("context/../../escaped")]);
    await expect(sync.plan()).rejects.toBeInstanceOf(SyncEscapeError);
    expect(existsSync(join(dir, "escaped"))).toBe(false);
  });
});

const base = { mode: 0o755, uid: 0, gid: 0, size: 0, mtimeNs: "0" } as const;
const dirEntry = (path: string): SyncEntry => ({ ...base, path, kind: "dir" });
const fileEntry = (path: string): SyncEntry => ({ ...base, path, kind: "file", mode: 0o644, size: 1 });
const linkEntry = (path: string, target: string): SyncEntry => ({ ...base, path, kind: "symlink", target });

describe("validateListing()", () => {
  test("accepts a listing whose every entry follows its directory", () => {
    expect(() => validateListing([dirEntry("context"), dirEntry("context/a"), fileEntry("context/a/b"), linkEntry("context/l", "../../../etc"), dirEntry("dockerfile"), fileEntry("dockerfile/Dockerfile")])).not.toThrow();
  });

  test.each([
    ["a '..' segment", [dirEntry("context"), fileEntry("context/../x")], /"\." or "\.\." segment/],
    ["an absolute path", [dirEntry("context"), fileEntry("/etc/passwd")], /not a relative path/],
    ["a path through a symlink", [dirEntry("context"), linkEntry("context/l", "/etc"), fileEntry("context/l/passwd")], /below the symlink "context\/l"/],
    ["an entry before its directory", [dirEntry("context"), fileEntry("context/a/b"), dirEntry("context/a")], /comes before its directory/],
    ["a top-level name other than context and dockerfile", [dirEntry("etc")], /is not below/],
    ["an empty segment", [dirEntry("context"), fileEntry("context//x")], /segment/],
    ["a path listed twice", [dirEntry("context"), fileEntry("context/x"), fileEntry("context/x")], /listed twice/],
  ] as const)("refuses %s", (_name, entries, message) => {
    expect(() => validateListing(entries)).toThrow(message);
    expect(() => validateListing(entries)).toThrow(SyncEscapeError);
  });
});
