import { lstat, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { isKilnError } from "../../solver/llb/index.js";
import { getXattr } from "../syscalls.js";
import { applyLayer } from "./apply-layer.js";
import { LayerError } from "./errors.js";
import { describeTree, type FixtureEntry, layerTar, sha256Of, tarStreamOf, tempDir } from "./testing/layer-tar.js";

async function apply(dir: string, entries: readonly FixtureEntry[], whiteouts: "overlay" | "native" = "overlay", userxattr = false) {
  const bytes = await layerTar(entries);
  const result = await applyLayer(tarStreamOf(bytes), dir, { layerName: "sha256:layer", whiteouts, userxattr });
  return { bytes, result };
}

describe("applyLayer()", () => {
  test("writes files, directories, symlinks, hardlinks, devices and fifos with owners, modes, mtimes and xattrs", async () => {
    const dir = await tempDir();
    const { bytes, result } = await apply(dir, [
      { name: "etc/", type: "directory", mode: 0o750, uid: 7, gid: 8, mtime: 1_500_000_000 },
      { name: "etc/passwd", content: "root:x:0:0\n", mode: 0o640, uid: 1000, gid: 1001, mtime: 1_400_000_000, xattrs: { "user.kiln": "yes", "trusted.kiln": "t" } },
      { name: "etc/passwd-link", type: "link", linkname: "etc/passwd" },
      { name: "bin/sh", type: "symlink", linkname: "/bin/busybox", uid: 5, gid: 6 },
      { name: "bin/setuid", content: "x", mode: 0o4755, uid: 12, gid: 0 },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop0", type: "block-device", devmajor: 7, devminor: 0, mode: 0o660 },
      { name: "run/fifo", type: "fifo", mode: 0o600 },
    ]);
    expect(result.diffId).toBe(sha256Of(bytes));
    expect(result.size).toBe(bytes.byteLength);
    expect(await describeTree(dir, { mtimes: true })).toEqual([
      "bin dir 755 0:0",
      "bin/setuid file:2d711642b726 4755 12:0 mtime=1600000000",
      "bin/sh symlink->/bin/busybox 777 5:6 mtime=1600000000",
      "dev dir 755 0:0",
      "dev/loop0 block:1792 660 0:0 mtime=1600000000",
      "dev/null char:259 666 0:0 mtime=1600000000",
      "etc dir 750 7:8",
      "etc/passwd file:7cf1f940025c 640 1000:1001 mtime=1400000000 trusted.kiln=t,user.kiln=yes",
      "etc/passwd-link file:7cf1f940025c 640 1000:1001 mtime=1400000000 trusted.kiln=t,user.kiln=yes",
      "run dir 755 0:0",
      "run/fifo fifo 600 0:0 mtime=1600000000",
    ]);
    expect((await lstat(join(dir, "etc/passwd"))).ino).toBe((await lstat(join(dir, "etc/passwd-link"))).ino);
    expect(Math.floor((await lstat(join(dir, "etc"))).mtimeMs / 1000)).toBe(1_500_000_000);
  });

  test("turns .wh. entries into 0:0 character devices and .wh..wh..opq into trusted.overlay.opaque in overlay mode", async () => {
    const dir = await tempDir();
    await apply(dir, [
      { name: "a/", type: "directory" },
      { name: "a/.wh.gone", content: "" },
      { name: "b/", type: "directory" },
      { name: "b/.wh..wh..opq", content: "" },
      { name: "b/kept", content: "k" },
    ]);
    const whiteout = await lstat(join(dir, "a/gone"));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    expect(getXattr(join(dir, "b"), "trusted.overlay.opaque")?.toString()).toBe("y");
    expect(await readdir(join(dir, "a"))).toEqual(["gone"]);
    expect(await readFile(join(dir, "b/kept"), "utf8")).toBe("k");
  });

  test("marks opaque directories with user.overlay.opaque when userxattr is set", async () => {
    const dir = await tempDir();
    await apply(dir, [{ name: "b/", type: "directory" }, { name: "b/.wh..wh..opq", content: "" }], "overlay", true);
    expect(getXattr(join(dir, "b"), "user.overlay.opaque")?.toString()).toBe("y");
    expect(getXattr(join(dir, "b"), "trusted.overlay.opaque")).toBeUndefined();
  });

  test("deletes whited-out names and empties opaque directories (keeping this layer's entries) in native mode", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "a/sub"), { recursive: true });
    await writeFile(join(dir, "a/gone"), "old");
    await writeFile(join(dir, "a/stays"), "old");
    await mkdir(join(dir, "b/old"), { recursive: true });
    await writeFile(join(dir, "b/old-file"), "old");
    await apply(dir, [
      { name: "a/.wh.gone", content: "" },
      { name: "a/.wh.sub", content: "" },
      { name: "b/", type: "directory" },
      { name: "b/new", content: "n" },
      { name: "b/.wh..wh..opq", content: "" },
    ], "native");
    expect((await readdir(join(dir, "a"))).sort()).toEqual(["stays"]);
    expect((await readdir(join(dir, "b"))).sort()).toEqual(["new"]);
  });

  test("replaces a directory with a file and a file with a directory", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "was-dir/child"), { recursive: true });
    await writeFile(join(dir, "was-file"), "f");
    await apply(dir, [
      { name: "was-dir", content: "now a file" },
      { name: "was-file/", type: "directory" },
      { name: "was-file/inner", content: "i" },
    ], "native");
    expect(await readFile(join(dir, "was-dir"), "utf8")).toBe("now a file");
    expect(await readFile(join(dir, "was-file/inner"), "utf8")).toBe("i");
  });

  test("replaces an existing symlink instead of writing through it", async () => {
    const dir = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, "target"), "untouched");
    await apply(dir, [{ name: "link", type: "symlink", linkname: join(outside, "target") }, { name: "link", content: "replaced" }], "native");
    expect(await readFile(join(dir, "link"), "utf8")).toBe("replaced");
    expect(await readFile(join(outside, "target"), "utf8")).toBe("untouched");
  });

  test("follows a relative symlink that stays inside the root", async () => {
    const dir = await tempDir();
    await apply(dir, [
      { name: "usr/lib/", type: "directory" },
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "lib/libc.so", content: "c" },
    ], "native");
    expect(await readFile(join(dir, "usr/lib/libc.so"), "utf8")).toBe("c");
    expect(await readlink(join(dir, "lib"))).toBe("usr/lib");
  });
});

describe("applyLayer() refuses an entry that escapes the root", () => {
  const cases: { name: string; entries: (outside: string) => FixtureEntry[]; entry: string }[] = [
    { name: "a .. path", entries: () => [{ name: "../pwned", content: "x" }], entry: "../pwned" },
    { name: "a .. path that would clean to inside", entries: () => [{ name: "a/../../pwned", content: "x" }], entry: "a/../../pwned" },
    { name: "an absolute path", entries: (o) => [{ name: `${o}/pwned`, content: "x" }], entry: "/pwned" },
    { name: "a write through an absolute symlink", entries: (o) => [{ name: "evil", type: "symlink", linkname: o }, { name: "evil/pwned", content: "x" }], entry: "evil/pwned" },
    { name: "a write through a symlink to /", entries: () => [{ name: "root", type: "symlink", linkname: "/" }, { name: "root/tmp/pwned", content: "x" }], entry: "root/tmp/pwned" },
    { name: "a write through a relative symlink climbing out", entries: () => [{ name: "d/", type: "directory" }, { name: "d/up", type: "symlink", linkname: "../../.." }, { name: "d/up/pwned", content: "x" }], entry: "d/up/pwned" },
    { name: "a hardlink to outside with ..", entries: () => [{ name: "h", type: "link", linkname: "../outside/secret" }], entry: "h" },
    { name: "a hardlink to an absolute path", entries: (o) => [{ name: "h", type: "link", linkname: `${o}/secret` }], entry: "h" },
    { name: "a hardlink through a symlink", entries: (o) => [{ name: "l", type: "symlink", linkname: o }, { name: "h", type: "link", linkname: "l/secret" }], entry: "h" },
    { name: "a device node outside", entries: () => [{ name: "../sda", type: "block-device", devmajor: 8, devminor: 0 }], entry: "../sda" },
    { name: "a whiteout through a symlink", entries: (o) => [{ name: "l", type: "symlink", linkname: o }, { name: "l/.wh.secret", content: "" }], entry: "l/.wh.secret" },
  ];

  for (const c of cases) {
    for (const whiteouts of ["overlay", "native"] as const) {
      test(`${c.name} (${whiteouts})`, async () => {
        const base = await tempDir();
        const root = join(base, "root");
        const outside = join(base, "outside");
        await mkdir(root);
        await mkdir(outside);
        await writeFile(join(outside, "secret"), "secret");
        const before = await describeTree(base, { mtimes: true });
        const bytes = await layerTar(c.entries(outside));
        const error = await applyLayer(tarStreamOf(bytes), root, { layerName: "sha256:evil", whiteouts }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isKilnError(error)).toBe(true);
        expect(error).toBeInstanceOf(LayerError);
        expect((error as LayerError).code).toBe("KILN_LAYER_UNSAFE_ENTRY");
        expect((error as LayerError).message).toContain('layer "sha256:evil"');
        expect((error as LayerError).entry).toContain(c.entry.replace(/^\//, ""));
        const after = (await describeTree(base, { mtimes: true })).filter((l) => !l.startsWith("root"));
        expect(after).toEqual(before.filter((l) => !l.startsWith("root")));
        expect(await readFile(join(outside, "secret"), "utf8")).toBe("secret");
      });
    }
  }
});
