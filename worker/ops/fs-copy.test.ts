import { lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { copyPath, type CopyOptions } from "./fs-copy.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function roots(): Promise<{ src: string; dest: string }> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-fs-copy-"));
  dirs.push(dir);
  await mkdir(join(dir, "src"));
  await mkdir(join(dir, "dest"));
  return { src: join(dir, "src"), dest: join(dir, "dest") };
}

const options: CopyOptions = { followSymlinks: false, dirContentsOnly: true, include: [], exclude: [] };

describe("copyPath() onto what is already there", () => {
  test("replaces files and symlinks in the way and merges into existing directories", async () => {
    const { src, dest } = await roots();
    await mkdir(join(src, "app/sub"), { recursive: true });
    await writeFile(join(src, "app/a"), "new a");
    await writeFile(join(src, "app/link"), "now a file");
    await writeFile(join(src, "app/sub/b"), "new b");
    await mkdir(join(dest, "app/sub"), { recursive: true });
    await writeFile(join(dest, "app/a"), "old a");
    // A symlink in the way is replaced, not written through.
    await writeFile(join(dest, "elsewhere"), "untouched");
    await symlink("../elsewhere", join(dest, "app/link"));
    await writeFile(join(dest, "app/sub/kept"), "kept");

    await copyPath(src, "/app", dest, "/app", options);
    expect(await readFile(join(dest, "app/a"), "utf8")).toBe("new a");
    expect((await lstat(join(dest, "app/link"))).isFile()).toBe(true);
    expect(await readFile(join(dest, "app/link"), "utf8")).toBe("now a file");
    expect(await readFile(join(dest, "elsewhere"), "utf8")).toBe("untouched");
    expect((await readdir(join(dest, "app/sub"))).sort()).toEqual(["b", "kept"]);
  });

  test("refuses to put a file where a directory is, naming the path", async () => {
    const { src, dest } = await roots();
    await mkdir(join(src, "app"));
    await writeFile(join(src, "app/conf"), "file");
    await mkdir(join(dest, "app/conf"), { recursive: true });
    await expect(copyPath(src, "/app", dest, "/app", options)).rejects.toThrow(/Cannot copy a file to ".*app\/conf": a directory is in the way/);
  });
});
