import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, test } from "vitest";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "..", "..");
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A copy of bin/ and the built bundle, so this test's cache is its own. */
async function install(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-code-cache-"));
  dirs.push(dir);
  await cp(join(repo, "bin"), join(dir, "bin"), { recursive: true });
  await mkdir(join(dir, "dist"));
  await cp(join(repo, "dist", "bundle"), join(dir, "dist", "bundle"), { recursive: true, filter: (src) => !src.includes(".code-cache") });
  await cp(join(repo, "package.json"), join(dir, "package.json"));
  return dir;
}

test("bin/kiln writes V8's code cache of the bundle once, uses it, and replaces one V8 rejects", async () => {
  const dir = await install();
  const kiln = join(dir, "bin", "kiln");
  const cacheDir = join(dir, "dist", "bundle", ".code-cache");
  const version = (await run(kiln, ["--version"])).stdout;
  expect(version).toMatch(/^kiln \d+\.\d+\.\d+/);

  const files = (await readdir(cacheDir)).filter((f) => f.endsWith(".cache"));
  expect(files).toContain("main.cjs.cli.cache");
  const main = join(cacheDir, "main.cjs.cli.cache");
  const written = await stat(main, { bigint: true });
  expect(written.size).toBeGreaterThan(0n);

  // Accepted on the next run: not written again.
  expect((await run(kiln, ["--version"])).stdout).toBe(version);
  expect((await stat(main, { bigint: true })).mtimeNs).toBe(written.mtimeNs);

  // Garbage in place of the cache: V8 rejects it, the command works, and the cache is rewritten.
  await writeFile(main, Buffer.alloc(4096, 0x5a));
  expect((await run(kiln, ["--version"])).stdout).toBe(version);
  const rewritten = await readFile(main);
  expect(rewritten.equals(Buffer.alloc(4096, 0x5a))).toBe(false);
  expect(rewritten.byteLength).toBeGreaterThan(0);
  expect((await readdir(cacheDir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
});
