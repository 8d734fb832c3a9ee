import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { SyncDirs } from "./sync-dirs.js";

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "kiln-sync-dirs-"));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("SyncDirs", () => {
  test("lends one directory per key, and the same one again after release", async () => {
    const dirs = new SyncDirs(base, 4);
    await dirs.init();
    const a = await dirs.acquire("key-a");
    expect(a.kept).toBe(true);
    await writeFile(join(a.dir, "marker"), "");
    await a.release();
    const again = await dirs.acquire("key-a");
    expect(again.dir).toBe(a.dir);
    expect(existsSync(join(again.dir, "marker"))).toBe(true);
    expect((await dirs.acquire("key-b")).dir).not.toBe(a.dir);
  });

  test("a key in use is never shared: a second build gets a throwaway directory, removed on release", async () => {
    const dirs = new SyncDirs(base, 4);
    await dirs.init();
    const first = await dirs.acquire("same");
    const second = await dirs.acquire("same");
    expect(second.kept).toBe(false);
    expect(second.dir).not.toBe(first.dir);
    await second.release();
    expect(existsSync(second.dir)).toBe(false);
    expect(existsSync(first.dir)).toBe(true);
  });

  test("keeps at most the limit, removing the least recently used that is not in use", async () => {
    const dirs = new SyncDirs(base, 2);
    await dirs.init();
    const old = await dirs.acquire("old");
    await old.release();
    await utimes(old.dir, 1000, 1000);
    const busy = await dirs.acquire("busy");
    await utimes(busy.dir, 500, 500);
    const recent = await dirs.acquire("recent");
    // Three kept, limit two: "busy" is the oldest but in use, so "old" goes.
    expect(existsSync(old.dir)).toBe(false);
    expect(existsSync(busy.dir)).toBe(true);
    expect(existsSync(recent.dir)).toBe(true);
  });

  test("init() removes throwaway directories a stopped daemon left", async () => {
    await mkdir(join(base, "tmp-abc"), { recursive: true });
    await new SyncDirs(base, 2).init();
    expect(existsSync(join(base, "tmp-abc"))).toBe(false);
  });
});
