import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { layerTar, tempDir, type FixtureEntry } from "../snapshotter/testing/layer-tar.js";
import { archiveCompression, detectCompression, type Compression } from "./archive-detect.js";
import { ArchiveEntryEscapeError, ArchiveUnpackError, unpackArchive } from "./unpack-archive.js";

const ENTRIES: FixtureEntry[] = [
  { name: "app/", type: "directory", mode: 0o750, uid: 1000, gid: 1001, mtime: 1_500_000_000 },
  { name: "app/run.sh", content: "#!/bin/sh\necho hi\n", mode: 0o755, uid: 1000, gid: 1001, mtime: 1_500_000_100 },
  { name: "app/data.txt", content: "data", mode: 0o640, uid: 7, gid: 8, mtime: 1_500_000_200 },
  { name: "app/link", type: "symlink", linkname: "data.txt", uid: 1000, gid: 1001 },
  { name: "app/hard", type: "link", linkname: "app/data.txt", mode: 0o640, uid: 7, gid: 8, mtime: 1_500_000_200 },
  { name: "implied/deep/file", content: "deep" },
];

function compress(tar: Buffer, compression: Compression): Buffer {
  switch (compression) {
    case "none":
      return tar;
    case "gzip":
      return gzipSync(tar);
    default:
      return execFileSync(compression, ["-c"], { input: tar });
  }
}

async function archiveFile(dir: string, name: string, entries: FixtureEntry[], compression: Compression = "none"): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, compress(await layerTar(entries), compression));
  return path;
}

describe("archiveCompression()", () => {
  for (const compression of ["none", "gzip", "bzip2", "xz", "zstd"] as const) {
    it(`finds a ${compression} tar archive by its content, whatever its name`, async () => {
      const dir = await tempDir();
      const path = await archiveFile(dir, "no-extension", ENTRIES, compression);
      expect(await archiveCompression(path)).toBe(compression);
    });
  }

  it("says a compressed file that holds no tar is not an archive", async () => {
    const dir = await tempDir();
    writeFileSync(join(dir, "text.gz"), gzipSync(Buffer.from("just text, no tar header here ".repeat(40))));
    writeFileSync(join(dir, "text.xz"), execFileSync("xz", ["-c"], { input: Buffer.from("plain") }));
    expect(await archiveCompression(join(dir, "text.gz"))).toBeNull();
    expect(await archiveCompression(join(dir, "text.xz"))).toBeNull();
  });

  it("says an empty file named like an archive, a short file and an all-zero file are not archives", async () => {
    const dir = await tempDir();
    writeFileSync(join(dir, "empty.tar.gz"), "");
    writeFileSync(join(dir, "short.tar"), "ustar");
    writeFileSync(join(dir, "zeros.tar"), Buffer.alloc(1024));
    for (const name of ["empty.tar.gz", "short.tar", "zeros.tar"]) expect(await archiveCompression(join(dir, name))).toBeNull();
  });

  it("says a gzip magic followed by garbage is not an archive (BuildKit copies such a file as it is)", async () => {
    const dir = await tempDir();
    writeFileSync(join(dir, "bad.gz"), Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08]), Buffer.alloc(600, 0x41)]));
    expect(await archiveCompression(join(dir, "bad.gz"))).toBeNull();
  });

  it("accepts an archive written by GNU tar", async () => {
    const dir = await tempDir();
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src/a"), "a");
    execFileSync("tar", ["-cJf", join(dir, "gnu.bin"), "-C", join(dir, "src"), "."]);
    expect(await archiveCompression(join(dir, "gnu.bin"))).toBe("xz");
  });

  it("detectCompression() tells the magic numbers apart", () => {
    expect(detectCompression(Buffer.from("BZh91AY"))).toBe("bzip2");
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe("zstd");
    expect(detectCompression(Buffer.from([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]))).toBe("zstd");
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 0x07]))).toBe("none");
  });
});

describe("unpackArchive()", () => {
  for (const compression of ["none", "gzip", "bzip2", "xz", "zstd"] as const) {
    it(`unpacks a ${compression} archive keeping modes, owners, mtimes, symlinks and hardlinks`, async () => {
      const dir = await tempDir();
      const path = await archiveFile(dir, "a", ENTRIES, compression);
      const dest = join(dir, "dest");
      mkdirSync(dest);
      await unpackArchive(path, dest, { archiveName: "a", compression });
      const app = lstatSync(join(dest, "app"));
      expect([app.mode & 0o7777, app.uid, app.gid, app.mtimeMs / 1000]).toEqual([0o750, 1000, 1001, 1_500_000_000]);
      const run = lstatSync(join(dest, "app/run.sh"));
      expect([run.mode & 0o7777, run.uid, run.mtimeMs / 1000]).toEqual([0o755, 1000, 1_500_000_100]);
      expect(readFileSync(join(dest, "app/data.txt"), "utf8")).toBe("data");
      expect(lstatSync(join(dest, "app/data.txt")).mode & 0o7777).toBe(0o640);
      expect(readlinkSync(join(dest, "app/link"))).toBe("data.txt");
      expect(lstatSync(join(dest, "app/link")).uid).toBe(1000);
      expect(lstatSync(join(dest, "app/hard")).ino).toBe(lstatSync(join(dest, "app/data.txt")).ino);
      const implied = lstatSync(join(dest, "implied/deep"));
      expect([implied.mode & 0o7777, implied.uid]).toEqual([0o755, 0]);
    });
  }

  it("gives every entry the --chown owner when one is given", async () => {
    const dir = await tempDir();
    const path = await archiveFile(dir, "a.tar", ENTRIES);
    const dest = join(dir, "dest");
    mkdirSync(dest);
    await unpackArchive(path, dest, { archiveName: "a.tar", compression: "none", owner: { uid: 42, gid: 43 } });
    for (const p of ["app", "app/run.sh", "app/link"]) expect([lstatSync(join(dest, p)).uid, lstatSync(join(dest, p)).gid]).toEqual([42, 43]);
  });

  it("merges into existing directories and replaces files in the way", async () => {
    const dir = await tempDir();
    const dest = join(dir, "dest");
    mkdirSync(join(dest, "app"), { recursive: true });
    writeFileSync(join(dest, "app/kept"), "kept");
    mkdirSync(join(dest, "app/data.txt"));
    const path = await archiveFile(dir, "a.tar", ENTRIES);
    await unpackArchive(path, dest, { archiveName: "a.tar", compression: "none" });
    expect(readFileSync(join(dest, "app/kept"), "utf8")).toBe("kept");
    expect(statSync(join(dest, "app/data.txt")).isFile()).toBe(true);
  });

  it("puts absolute entry names under the destination", async () => {
    const dir = await tempDir();
    const dest = join(dir, "dest");
    mkdirSync(dest);
    const path = await archiveFile(dir, "abs.tar", [{ name: "/etc/abs", content: "x" }]);
    await unpackArchive(path, dest, { archiveName: "abs.tar", compression: "none" });
    expect(readFileSync(join(dest, "etc/abs"), "utf8")).toBe("x");
  });

  const escapes: [string, FixtureEntry[], string][] = [
    ["a name that climbs out with ..", [{ name: "../evil", content: "x" }], "../evil"],
    ["a symlink whose target climbs out", [{ name: "up", type: "symlink", linkname: "../../outside" }], "up"],
    ["a hardlink to a path outside", [{ name: "hl", type: "link", linkname: "../outside" }], "hl"],
    ["a path through a pre-existing symlink that points out", [{ name: "out/evil", content: "x" }], "out/evil"],
  ];
  for (const [what, entries, entry] of escapes) {
    it(`refuses ${what}, naming the archive and the entry`, async () => {
      const dir = await tempDir();
      const dest = join(dir, "a/dest");
      mkdirSync(dest, { recursive: true });
      writeFileSync(join(dir, "a/outside"), "outside");
      symlinkSync("../..", join(dest, "out"));
      const path = await archiveFile(dir, "evil.tar", entries);
      const error = await unpackArchive(path, dest, { archiveName: "ctx/evil.tar", compression: "none" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArchiveEntryEscapeError);
      expect((error as ArchiveEntryEscapeError).code).toBe("KILN_ARCHIVE_ENTRY_ESCAPES");
      expect((error as Error).message).toContain(`"ctx/evil.tar"`);
      expect((error as Error).message).toContain(`entry "${entry}"`);
      expect(existsSync(join(dir, "evil"))).toBe(false);
      expect(readFileSync(join(dir, "a/outside"), "utf8")).toBe("outside");
    });
  }

  it("follows an absolute symlink inside the destination, as BuildKit's chroot does", async () => {
    const dir = await tempDir();
    const dest = join(dir, "dest");
    mkdirSync(dest);
    const path = await archiveFile(dir, "abs-link.tar", [
      { name: "etc", type: "symlink", linkname: "/real" },
      { name: "real/", type: "directory" },
      { name: "etc/passwd", content: "inside" },
    ]);
    await unpackArchive(path, dest, { archiveName: "abs-link.tar", compression: "none" });
    expect(readFileSync(join(dest, "real/passwd"), "utf8")).toBe("inside");
    expect(readlinkSync(join(dest, "etc"))).toBe("/real");
  });

  for (const compression of ["gzip", "xz"] as const) {
    it(`fails with an error naming the source when a ${compression} archive is truncated`, async () => {
      const dir = await tempDir();
      const big = [{ name: "big", content: "0123456789abcdef".repeat(64 * 1024) }, ...ENTRIES];
      const whole = compress(await layerTar(big), compression);
      const path = join(dir, "cut");
      writeFileSync(path, whole.subarray(0, Math.floor(whole.length / 2)));
      expect(await archiveCompression(path)).toBe(compression);
      const dest = join(dir, "dest");
      mkdirSync(dest);
      const error = await unpackArchive(path, dest, { archiveName: "ctx/cut", compression }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArchiveUnpackError);
      expect((error as ArchiveUnpackError).code).toBe("KILN_ARCHIVE_UNPACK_FAILED");
      expect((error as Error).message).toMatch(new RegExp(`^Cannot unpack "ctx/cut" \\(${compression}-compressed tar\\): the archive is corrupt or truncated`));
    });
  }
});
