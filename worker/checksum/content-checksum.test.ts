import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { contentChecksum } from "./content-checksum.js";
import { selectEntries } from "./selection.js";
import { StatCache } from "./stat-cache.js";

let dir: string;
let tree: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-checksum-"));
  tree = join(dir, "tree");
  mkdirSync(join(tree, "src/lib"), { recursive: true });
  mkdirSync(join(tree, "node_modules/x"), { recursive: true });
  writeFileSync(join(tree, "src/main.ts"), "main");
  writeFileSync(join(tree, "src/lib/a.ts"), "a");
  writeFileSync(join(tree, "node_modules/x/index.js"), "x");
  writeFileSync(join(tree, "README.md"), "readme");
  symlinkSync("src/main.ts", join(tree, "entry"));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("selectEntries()", () => {
  it("lists parents before children in byte order and skips excluded directories", async () => {
    const paths = (await selectEntries(tree, { exclude: ["node_modules"] })).map((e) => e.path);
    expect(paths).toEqual(["README.md", "entry", "src", "src/lib", "src/lib/a.ts", "src/main.ts"]);
  });

  it("keeps only included paths and the directories leading to them", async () => {
    const paths = (await selectEntries(tree, { include: ["src/lib"] })).map((e) => e.path);
    expect(paths).toEqual(["src", "src/lib", "src/lib/a.ts"]);
  });

  it("enters an excluded directory when an exception re-includes something below it", async () => {
    const paths = (await selectEntries(tree, { exclude: ["src", "!src/main.ts"] })).map((e) => e.path);
    expect(paths).toContain("src/main.ts");
    expect(paths).not.toContain("src/lib/a.ts");
  });
});

describe("contentChecksum()", () => {
  it("is stable for the same tree and ignores times", async () => {
    const first = await contentChecksum(tree);
    utimesSync(join(tree, "src/main.ts"), 1, 1);
    expect(await contentChecksum(tree)).toBe(first);
  });

  it("changes with content, mode and link target", async () => {
    const start = await contentChecksum(tree);
    writeFileSync(join(tree, "src/main.ts"), "changed");
    const afterContent = await contentChecksum(tree);
    expect(afterContent).not.toBe(start);
    chmodSync(join(tree, "README.md"), 0o600);
    const afterMode = await contentChecksum(tree);
    expect(afterMode).not.toBe(afterContent);
    rmSync(join(tree, "entry"));
    symlinkSync("README.md", join(tree, "entry"));
    expect(await contentChecksum(tree)).not.toBe(afterMode);
  });

  it("does not change when an excluded file changes", async () => {
    const selection = { exclude: ["node_modules"] };
    const before = await contentChecksum(tree, { selection });
    writeFileSync(join(tree, "node_modules/x/index.js"), "other");
    expect(await contentChecksum(tree, { selection })).toBe(before);
  });

  it("reuses remembered hashes for unchanged files and re-hashes changed ones", async () => {
    const cacheFile = join(dir, "cache.json");
    const plain = await contentChecksum(tree);
    const cache = await StatCache.open(cacheFile, { racyMs: 0 });
    expect(await contentChecksum(tree, { cache })).toBe(plain);
    await cache.save();
    // Poison the remembered hash of one file: a checksum that reads it proves the file was not re-read.
    const lines = readFileSync(cacheFile, "utf8").split("\n");
    const index = lines.findIndex((line) => line.endsWith(" src/main.ts"));
    const [key] = (lines[index] as string).split(" ");
    lines[index] = `${key} ${"0".repeat(64)} src/main.ts`;
    writeFileSync(cacheFile, lines.join("\n"));
    const reused = await contentChecksum(tree, { cache: await StatCache.open(cacheFile, { racyMs: 0 }) });
    expect(reused).not.toBe(plain);
    // A changed file (new size, mtime, ctime) is hashed again.
    writeFileSync(join(tree, "src/main.ts"), "new content");
    expect(await contentChecksum(tree, { cache: await StatCache.open(cacheFile, { racyMs: 0 }) })).toBe(await contentChecksum(tree));
  });

  it("does not remember files changed within the racy window", async () => {
    const cacheFile = join(dir, "cache.json");
    const cache = await StatCache.open(cacheFile, { racyMs: 3_600_000 });
    await contentChecksum(tree, { cache });
    await cache.save();
    expect(existsSync(cacheFile)).toBe(false);
  });

  it("rewrites the cache file only when the walk saw something new", async () => {
    const cacheFile = join(dir, "cache.txt");
    const first = await StatCache.open(cacheFile, { racyMs: 0 });
    await contentChecksum(tree, { cache: first });
    expect(first.changed).toBe(true);
    await first.save();
    const written = statSync(cacheFile, { bigint: true }).mtimeNs;
    const again = await StatCache.open(cacheFile, { racyMs: 0 });
    await contentChecksum(tree, { cache: again });
    expect(again.changed).toBe(false);
    await again.save();
    expect(statSync(cacheFile, { bigint: true }).mtimeNs).toBe(written);
    writeFileSync(join(tree, "README.md"), "new readme");
    const changed = await StatCache.open(cacheFile, { racyMs: 0 });
    await contentChecksum(tree, { cache: changed });
    expect(changed.changed).toBe(true);
  });

  it("reads a cache file of another format as empty", async () => {
    const cacheFile = join(dir, "cache.json");
    writeFileSync(cacheFile, JSON.stringify({ "src/main.ts": `1:2:3:4:5 ${"0".repeat(64)}` }));
    const cache = await StatCache.open(cacheFile, { racyMs: 0 });
    expect(await contentChecksum(tree, { cache })).toBe(await contentChecksum(tree));
  });

  it("is pinned: the same tree gives the same digest in every version, from the files or from the stat cache", async () => {
    // A change of the record format would invalidate every user's cache keys and imported caches.
    // 3,000 files make records well past one hashing batch.
    const pinned = join(dir, "pinned");
    mkdirSync(pinned);
    for (let d = 0; d < 30; d++) {
      mkdirSync(join(pinned, `dir-${d}`));
      chmodSync(join(pinned, `dir-${d}`), 0o755);
      for (let f = 0; f < 100; f++) {
        const file = join(pinned, `dir-${d}`, `file-${f}.txt`);
        writeFileSync(file, `content ${d} ${f}\n`);
        chmodSync(file, f % 2 === 0 ? 0o644 : 0o755);
      }
    }
    symlinkSync("dir-0/file-0.txt", join(pinned, "link"));
    chmodSync(pinned, 0o755);
    const expected = "sha256:c52b11fa6f3c130cc7697554e62e4c27691a2e3740be062625c827911b928807";
    const cacheFile = join(dir, "pinned-cache.txt");
    const first = await StatCache.open(cacheFile, { racyMs: 0 });
    expect(await contentChecksum(pinned, { owner: { uid: 0, gid: 0 }, cache: first })).toBe(expected);
    await first.save();
    const cached = await StatCache.open(cacheFile, { racyMs: 0 });
    expect(await contentChecksum(pinned, { owner: { uid: 0, gid: 0 }, cache: cached })).toBe(expected);
    expect(cached.changed).toBe(false);
  });
});
