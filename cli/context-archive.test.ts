import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import * as tar from "tar-stream";
import { createPathMatcher } from "../solver/llb/index.js";
import { extractContextArchive, packContextArchive } from "./context-archive.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-archive-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("packContextArchive() and extractContextArchive()", () => {
  test("round-trip a context without what .dockerignore excludes, keeping modes and symlinks", async () => {
    const src = join(dir, "src");
    await mkdir(join(src, "node_modules/x"), { recursive: true });
    await mkdir(join(src, "app"), { recursive: true });
    await writeFile(join(src, "app/main.sh"), "echo hi\n", { mode: 0o755 });
    await writeFile(join(src, "node_modules/x/index.js"), "big");
    await writeFile(join(src, "secret.env"), "KEY=1");
    await writeFile(join(src, "keep.env"), "KEY=2");
    await symlink("app/main.sh", join(src, "link"));
    const ignore = createPathMatcher(["node_modules", "*.env", "!keep.env"]);
    const out = join(dir, "out");
    await extractContextArchive(packContextArchive(src, ignore, { prefix: "context/", extra: [{ name: "df/Dockerfile", data: Buffer.from("FROM x\n") }] }), out);
    expect(await readFile(join(out, "context/app/main.sh"), "utf8")).toBe("echo hi\n");
    expect((await import("node:fs")).statSync(join(out, "context/app/main.sh")).mode & 0o777).toBe(0o755);
    expect(await readlink(join(out, "context/link"))).toBe("app/main.sh");
    expect(await readFile(join(out, "context/keep.env"), "utf8")).toBe("KEY=2");
    expect(await readFile(join(out, "df/Dockerfile"), "utf8")).toBe("FROM x\n");
    expect(existsSync(join(out, "context/node_modules"))).toBe(false);
    expect(existsSync(join(out, "context/secret.env"))).toBe(false);
  });

  test("refuses an entry that escapes the destination", async () => {
    const pack = tar.pack();
    pack.entry({ name: "../evil", mode: 0o644 }, "x");
    pack.finalize();
    await expect(extractContextArchive(Readable.from(pack as AsyncIterable<Buffer>), join(dir, "out"))).rejects.toThrow(/outside/);
    expect(existsSync(join(dir, "evil"))).toBe(false);
  });
});
