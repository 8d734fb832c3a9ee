import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { link, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import * as tar from "tar-stream";
import { extractContextArchive } from "./context-archive.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-archive-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("extractContextArchive()", () => {
  test("unpacks a context tar, keeping modes, symlinks and hard links", async () => {
    const src = join(dir, "src");
    await mkdir(join(src, "app"), { recursive: true });
    await writeFile(join(src, "app/main.sh"), "echo hi\n", { mode: 0o755 });
    await symlink("app/main.sh", join(src, "link"));
    await link(join(src, "app/main.sh"), join(src, "hard"));
    const archive = execFileSync("tar", ["-C", src, "-cf", "-", "."]);
    const out = join(dir, "out");
    await extractContextArchive(Readable.from([archive]), out);
    expect(await readFile(join(out, "app/main.sh"), "utf8")).toBe("echo hi\n");
    expect(statSync(join(out, "app/main.sh")).mode & 0o777).toBe(0o755);
    expect(await readlink(join(out, "link"))).toBe("app/main.sh");
    expect(statSync(join(out, "hard")).ino).toBe(statSync(join(out, "app/main.sh")).ino);
  });

  test("refuses an entry that escapes the destination", async () => {
    const pack = tar.pack();
    pack.entry({ name: "../evil", mode: 0o644 }, "x");
    pack.finalize();
    await expect(extractContextArchive(Readable.from(pack as AsyncIterable<Buffer>), join(dir, "out"))).rejects.toThrow(/outside/);
    expect(existsSync(join(dir, "evil"))).toBe(false);
  });
});
