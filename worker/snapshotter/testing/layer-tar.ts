import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { onTestFinished } from "vitest";
import { getXattr, listXattrs } from "../../syscalls.js";

/** Test support: builds layer tars by hand and describes trees for comparison. Not used by kiln itself. */

export interface FixtureEntry {
  readonly name: string;
  readonly type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  readonly content?: string;
  readonly linkname?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly xattrs?: Readonly<Record<string, string>>;
}

/** An uncompressed tar of `entries`, in the given order. */
export async function layerTar(entries: readonly FixtureEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    const pax: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.xattrs ?? {})) pax[`SCHILY.xattr.${k}`] = v;
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? 1_600_000_000) * 1000),
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      ...(e.devmajor === undefined ? {} : { devmajor: e.devmajor, devminor: e.devminor ?? 0 }),
      ...(Object.keys(pax).length > 0 ? { pax } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, type === "file" ? (e.content ?? "") : "", (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function tarStreamOf(bytes: Buffer): Readable {
  return Readable.from([bytes]);
}

export function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A fresh directory under the OS temp dir, removed when the current test finishes. */
export async function tempDir(prefix = "kiln-test-"): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(path, { recursive: true, force: true }));
  return path;
}

/**
 * A line per entry under `dir` (sorted): type, mode, owner, size, content hash or link target,
 * device numbers, xattrs, and (with `mtimes`) the mtime in seconds for non-directories.
 */
export async function describeTree(dir: string, options: { mtimes?: boolean } = {}): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const abs = join(dir, path);
      const s = await lstat(abs);
      let what: string;
      if (s.isDirectory()) what = "dir";
      else if (s.isSymbolicLink()) what = `symlink->${await readlink(abs)}`;
      else if (s.isFile()) what = `file:${createHash("sha256").update(await readFile(abs)).digest("hex").slice(0, 12)}`;
      else if (s.isCharacterDevice()) what = `char:${s.rdev}`;
      else if (s.isBlockDevice()) what = `block:${s.rdev}`;
      else if (s.isFIFO()) what = "fifo";
      else what = "other";
      const xattrs = listXattrs(abs).sort().map((n) => `${n}=${getXattr(abs, n)?.toString("latin1") ?? ""}`);
      const mtime = options.mtimes === true && !s.isDirectory() ? ` mtime=${Math.floor(s.mtimeMs / 1000)}` : "";
      lines.push(`${path} ${what} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}${mtime}${xattrs.length > 0 ? ` ${xattrs.join(",")}` : ""}`);
      if (s.isDirectory()) await walk(path);
    }
  };
  await walk("");
  return lines;
}
