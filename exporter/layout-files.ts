import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { constants, copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { assertNever, type Digest } from "../solver/llb/index.js";
import type { ContentStore } from "../worker/content/content-store.js";

/** One file of an image layout or archive: small metadata bytes, or a blob copied from the content store. */
export type LayoutFile =
  | { readonly kind: "bytes"; readonly path: string; readonly bytes: Buffer }
  | { readonly kind: "blob"; readonly path: string; readonly digest: Digest; readonly size: number };

/** `blobs/sha256/<hex>`: where a blob lives in an OCI image layout. */
export function blobPath(digest: Digest): string {
  return `blobs/sha256/${digest.slice("sha256:".length)}`;
}

/**
 * Writes `files` as one tar at `dest`, replacing it atomically (temp file, then rename). Headers
 * are deterministic: root-owned, mode 0644 (directories 0755), mtime 0, no user names; parent
 * directories get their own entries; files go in the order given, each directory before its
 * first file. So the same files always give the same tar bytes.
 */
export async function writeLayoutTar(files: readonly LayoutFile[], content: ContentStore, dest: string, signal?: AbortSignal): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const temp = `${dest}.kiln-${randomBytes(6).toString("hex")}`;
  const pack = tar.pack();
  const signalOption = signal === undefined ? {} : { signal };
  const writing = pipeline(pack, createWriteStream(temp), signalOption);
  const adding = (async () => {
    const seen = new Set<string>();
    for (const file of files) {
      for (const dir of parentDirectories(file.path)) {
        if (seen.has(dir)) continue;
        seen.add(dir);
        await addEntry(pack, { name: `${dir}/`, type: "directory", mode: 0o755 });
      }
      switch (file.kind) {
        case "bytes":
          await addEntry(pack, { name: file.path, type: "file", mode: 0o644, size: file.bytes.byteLength }, file.bytes);
          break;
        case "blob": {
          const entry = pack.entry(header({ name: file.path, type: "file", mode: 0o644, size: file.size }));
          await pipeline(content.openRead(file.digest), entry, signalOption);
          break;
        }
        default:
          assertNever(file);
      }
    }
    pack.finalize();
  })();
  adding.catch((error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))));
  try {
    await Promise.all([writing, adding]);
    await rename(temp, dest);
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * Writes `files` under the directory `dest`, blobs before metadata. Blobs already present with
 * the right size are kept (a layout directory may hold other images); every file is written to a
 * temp name and renamed, so a reader never sees half a file.
 */
export async function writeLayoutDirectory(files: readonly LayoutFile[], content: ContentStore, dest: string, signal?: AbortSignal): Promise<void> {
  // Blobs first, metadata (index.json) last: a reader never sees an index naming a missing blob.
  const ordered = [...files.filter((f) => f.kind === "blob"), ...files.filter((f) => f.kind !== "blob")];
  for (const file of ordered) {
    signal?.throwIfAborted();
    const target = join(dest, file.path);
    await mkdir(dirname(target), { recursive: true });
    const temp = `${target}.kiln-${randomBytes(6).toString("hex")}`;
    try {
      switch (file.kind) {
        case "bytes":
          await writeFile(temp, file.bytes);
          break;
        case "blob":
          if ((await sizeOf(target)) === file.size) continue;
          await copyFile(content.path(file.digest), temp, constants.COPYFILE_FICLONE);
          break;
        default:
          assertNever(file);
      }
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
  }
}

function header(fields: { name: string; type: "file" | "directory"; mode: number; size?: number }): Partial<tar.Header> & { name: string } {
  return { ...fields, uid: 0, gid: 0, uname: "", gname: "", mtime: new Date(0) };
}

function addEntry(pack: tar.Pack, fields: { name: string; type: "file" | "directory"; mode: number; size?: number }, bytes?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null): void => (error ? reject(error) : resolve());
    if (bytes === undefined) pack.entry(header(fields), done);
    else pack.entry(header(fields), bytes, done);
  });
}

/** `a/b/c` → `a`, `a/b`. */
function parentDirectories(path: string): string[] {
  const parts = path.split("/").slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
