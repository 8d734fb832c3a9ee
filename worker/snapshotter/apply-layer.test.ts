import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { isKilnError } from "../../solver/llb/index.js";
import { getXattr, mknodWhiteout, setXattr } from "../syscalls.js";
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

describe("applyLayer() resolves parents through symlinks inside the root, as containerd does", () => {
  test("cleans a \"..\" that stays inside the root", async () => {
    const dir = await tempDir();
    await apply(dir, [{ name: "a/", type: "directory" }, { name: "a/../b", content: "b" }], "native");
    expect(await readFile(join(dir, "b"), "utf8")).toBe("b");
  });

  test("follows an absolute symlink as if the root were /", async () => {
    const dir = await tempDir();
    await apply(dir, [
      { name: "run/", type: "directory" },
      { name: "var/", type: "directory" },
      { name: "var/run", type: "symlink", linkname: "/run" },
      { name: "var/run/x.pid", content: "1" },
    ], "native");
    expect(await readFile(join(dir, "run/x.pid"), "utf8")).toBe("1");
    expect(await readlink(join(dir, "var/run"))).toBe("/run");
  });

  test("follows a lower layer's symlink and writes into the upper directory (overlay)", async () => {
    const base = await tempDir();
    const lower = join(base, "lower");
    const upper = join(base, "upper");
    await mkdir(join(lower, "var"), { recursive: true });
    await mkdir(join(lower, "run"), { mode: 0o710 });
    await symlink("/run", join(lower, "var/run"));
    await mkdir(upper);
    const bytes = await layerTar([{ name: "var/run/x.pid", content: "1" }]);
    await applyLayer(tarStreamOf(bytes), upper, { layerName: "sha256:layer", whiteouts: "overlay", lowerdirs: [lower] });
    expect(await readFile(join(upper, "run/x.pid"), "utf8")).toBe("1");
    // The lower's directory is copied up with its mode; var/run is not shadowed by a directory.
    expect((await lstat(join(upper, "run"))).mode & 0o7777).toBe(0o710);
    expect(await readdir(join(upper, "var")).catch(() => [])).toEqual([]);
    expect(await readdir(join(lower, "run"))).toEqual([]);
  });

  test("sees lower whiteouts and opaque directories as overlayfs does", async () => {
    const base = await tempDir();
    const [bottom, middle, upper] = [join(base, "bottom"), join(base, "middle"), join(base, "upper")];
    await mkdir(join(bottom, "gone"), { recursive: true });
    await symlink("/elsewhere", join(bottom, "gone/link"));
    await mkdir(join(bottom, "hidden"), { recursive: true });
    await symlink("/elsewhere", join(bottom, "hidden/link"));
    await mkdir(join(middle, "hidden"), { recursive: true });
    setXattr(join(middle, "hidden"), "trusted.overlay.opaque", Buffer.from("y"));
    mknodWhiteout(join(middle, "gone"));
    await mkdir(upper);
    const bytes = await layerTar([
      { name: "gone/link/x", content: "g" },
      { name: "hidden/link/y", content: "h" },
    ]);
    await applyLayer(tarStreamOf(bytes), upper, { layerName: "sha256:layer", whiteouts: "overlay", lowerdirs: [middle, bottom] });
    expect(await readFile(join(upper, "gone/link/x"), "utf8")).toBe("g");
    expect(await readFile(join(upper, "hidden/link/y"), "utf8")).toBe("h");
  });

  test("copies a lower layer's file up for a hardlink to it (overlay)", async () => {
    const base = await tempDir();
    const lower = join(base, "lower");
    const upper = join(base, "upper");
    await mkdir(join(lower, "bin"), { recursive: true });
    await writeFile(join(lower, "bin/busybox"), "bb", { mode: 0o755 });
    await mkdir(upper);
    const bytes = await layerTar([{ name: "bin/sh", type: "link", linkname: "bin/busybox" }]);
    await applyLayer(tarStreamOf(bytes), upper, { layerName: "sha256:layer", whiteouts: "overlay", lowerdirs: [lower] });
    expect((await lstat(join(upper, "bin/sh"))).ino).toBe((await lstat(join(upper, "bin/busybox"))).ino);
    expect(await readFile(join(upper, "bin/sh"), "utf8")).toBe("bb");
    expect((await lstat(join(upper, "bin/busybox"))).mode & 0o777).toBe(0o755);
  });
});

/** A hostile layer's entries, given `outside` (a host directory next to the root) and the root's base. */
interface MaliciousCase {
  readonly name: string;
  readonly entries: (outside: string) => FixtureEntry[];
  readonly entry: string;
}

async function applyHostile(c: MaliciousCase, whiteouts: "overlay" | "native") {
  const base = await tempDir();
  const root = join(base, "root");
  const lower = join(base, "lower");
  const outside = join(base, "outside");
  await mkdir(root);
  await mkdir(lower);
  await mkdir(outside);
  await writeFile(join(outside, "secret"), "secret");
  // A lower layer that points out of the root in every way a symlink can.
  await symlink(outside, join(lower, "lower-abs"));
  await symlink("../../../../../../..", join(lower, "lower-up"));
  const before = await describeTree(base, { mtimes: true });
  const bytes = await layerTar(c.entries(outside));
  const error = await applyLayer(tarStreamOf(bytes), root, {
    layerName: "sha256:evil",
    whiteouts,
    ...(whiteouts === "overlay" ? { lowerdirs: [lower] } : {}),
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  const after = (await describeTree(base, { mtimes: true })).filter((l) => !l.startsWith("root"));
  expect(after).toEqual(before.filter((l) => !l.startsWith("root")));
  expect(await readFile(join(outside, "secret"), "utf8")).toBe("secret");
  return { root, outside, error };
}

describe("applyLayer() refuses an entry that escapes the root", () => {
  const cases: MaliciousCase[] = [
    { name: "a .. path", entries: () => [{ name: "../pwned", content: "x" }], entry: "../pwned" },
    { name: "a .. path that climbs out before coming back", entries: () => [{ name: "a/../../pwned", content: "x" }], entry: "a/../../pwned" },
    { name: "an absolute path", entries: (o) => [{ name: `${o}/pwned`, content: "x" }], entry: "/pwned" },
    { name: "a hardlink to outside with ..", entries: () => [{ name: "h", type: "link", linkname: "../outside/secret" }], entry: "h" },
    { name: "a hardlink to an absolute path", entries: (o) => [{ name: "h", type: "link", linkname: `${o}/secret` }], entry: "h" },
    { name: "a device node outside", entries: () => [{ name: "../sda", type: "block-device", devmajor: 8, devminor: 0 }], entry: "../sda" },
  ];

  for (const c of cases) {
    for (const whiteouts of ["overlay", "native"] as const) {
      test(`${c.name} (${whiteouts})`, async () => {
        const { error } = await applyHostile(c, whiteouts);
        expect(isKilnError(error)).toBe(true);
        expect(error).toBeInstanceOf(LayerError);
        expect((error as LayerError).code).toBe("KILN_LAYER_UNSAFE_ENTRY");
        expect((error as LayerError).message).toContain('layer "sha256:evil"');
        expect((error as LayerError).entry).toContain(c.entry.replace(/^\//, ""));
      });
    }
  }
});

describe("applyLayer() keeps writes through hostile symlinks inside the root", () => {
  const cases: (MaliciousCase & { lands: (outside: string) => string; overlayOnly?: boolean })[] = [
    { name: "a write through an absolute symlink", entries: (o) => [{ name: "evil", type: "symlink", linkname: o }, { name: "evil/pwned", content: "x" }], entry: "evil/pwned", lands: (o) => `${o}/pwned` },
    { name: "a write through a symlink to /", entries: () => [{ name: "root", type: "symlink", linkname: "/" }, { name: "root/tmp/pwned", content: "x" }], entry: "root/tmp/pwned", lands: () => "/tmp/pwned" },
    { name: "a write through a relative symlink climbing out", entries: () => [{ name: "d/", type: "directory" }, { name: "d/up", type: "symlink", linkname: "../../.." }, { name: "d/up/pwned", content: "x" }], entry: "d/up/pwned", lands: () => "/pwned" },
    { name: "a whiteout through a symlink", entries: (o) => [{ name: "l", type: "symlink", linkname: o }, { name: "l/.wh.secret", content: "" }, { name: "l/marker", content: "m" }], entry: "l/.wh.secret", lands: (o) => `${o}/marker` },
    { name: "a write through a lower layer's absolute symlink", entries: () => [{ name: "lower-abs/pwned", content: "x" }], entry: "lower-abs/pwned", lands: (o) => `${o}/pwned`, overlayOnly: true },
    { name: "a write through a lower layer's climbing symlink", entries: () => [{ name: "lower-up/pwned", content: "x" }], entry: "lower-up/pwned", lands: () => "/pwned", overlayOnly: true },
  ];

  for (const c of cases) {
    for (const whiteouts of ["overlay", "native"] as const) {
      if (c.overlayOnly === true && whiteouts === "native") continue;
      test(`${c.name} (${whiteouts})`, async () => {
        const { root, outside, error } = await applyHostile(c, whiteouts);
        expect(error).toBeUndefined();
        expect((await lstat(join(root, c.lands(outside)))).isFile()).toBe(true);
      });
    }
  }

  test("a hardlink through a symlink to outside names a missing file inside the root", async () => {
    const { error } = await applyHostile({ name: "", entries: (o) => [{ name: "l", type: "symlink", linkname: o }, { name: "h", type: "link", linkname: "l/secret" }], entry: "h" }, "native");
    expect((error as LayerError).code).toBe("KILN_LAYER_INVALID");
    expect((error as LayerError).entry).toBe("h");
  });
});
