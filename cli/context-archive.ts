import { chmod, link, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { KilnError } from "../solver/llb/index.js";

/**
 * Unpacks a tar stream (plain or gzip-compressed) into `dest` (a context given as `kiln build -`), refusing any entry whose path or
 * hard-link target escapes it. Regular files, directories, symlinks and hard links are kept;
 * other entry types are skipped.
 */
export async function extractContextArchive(source: Readable, dest: string, signal?: AbortSignal): Promise<void> {
  await mkdir(dest, { recursive: true });
  const root = resolve(dest);
  const inside = (name: string): string => {
    const path = resolve(root, name.replace(/^\/+/, ""));
    if (path !== root && !path.startsWith(`${root}${sep}`)) {
      throw new KilnError("KILN_CONTEXT_ESCAPE", `Cannot unpack the context: entry "${name}" points outside it`);
    }
    return path;
  };
  const extract = tar.extract();
  const dirTimes: [string, Date][] = [];
  extract.on("entry", (header, stream, next) => {
    void (async () => {
      const path = inside(header.name);
      const mode = (header.mode ?? 0o644) & 0o7777;
      switch (header.type) {
        case "directory":
          await mkdir(path, { recursive: true });
          await chmod(path, mode);
          if (header.mtime !== undefined) dirTimes.push([path, header.mtime]);
          stream.resume();
          break;
        case "file":
        case "contiguous-file":
        case undefined:
        case null: {
          await mkdir(dirname(path), { recursive: true });
          const chunks: Buffer[] = [];
          for await (const chunk of stream) chunks.push(chunk as Buffer);
          await writeFile(path, Buffer.concat(chunks), { mode });
          await chmod(path, mode);
          if (header.mtime !== undefined) await utimes(path, header.mtime, header.mtime);
          break;
        }
        case "symlink":
          await mkdir(dirname(path), { recursive: true });
          await symlink(header.linkname ?? "", path);
          stream.resume();
          break;
        case "link":
          await mkdir(dirname(path), { recursive: true });
          await link(inside(header.linkname ?? ""), path);
          stream.resume();
          break;
        default:
          stream.resume();
      }
    })().then(() => next(), (error: unknown) => next(error instanceof Error ? error : new Error(String(error))));
  });
  const sniffed = await sniffGzip(source);
  await pipeline(sniffed.gzip ? sniffed.stream.pipe(createGunzip()) : sniffed.stream, extract, { ...(signal === undefined ? {} : { signal }) });
  // Directory times last: unpacking their entries moved them.
  for (const [path, time] of dirTimes.reverse()) await utimes(path, time, time);
}

/** Reads the first bytes of `source` to tell gzip from plain, and returns a stream of all of it. */
async function sniffGzip(source: Readable): Promise<{ gzip: boolean; stream: Readable }> {
  const first = await firstChunk(source);
  const out = new PassThrough();
  if (first !== null) out.write(first);
  source.pipe(out);
  return { gzip: first !== null && first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b, stream: out };
}

function firstChunk(source: Readable): Promise<Buffer | null> {
  return new Promise((resolvePromise, reject) => {
    const onReadable = (): void => {
      const chunk = source.read() as Buffer | null;
      if (chunk === null && !source.readableEnded) return;
      cleanup();
      resolvePromise(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolvePromise(null);
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      source.off("readable", onReadable);
      source.off("end", onEnd);
      source.off("error", onError);
    };
    source.on("readable", onReadable);
    source.on("end", onEnd);
    source.on("error", onError);
  });
}

/** Whether `bytes` start a tar archive (the ustar magic at offset 257) or a gzip stream. */
export function looksLikeArchive(bytes: Buffer): boolean {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return true;
  return bytes.length >= 262 && bytes.subarray(257, 262).toString("latin1") === "ustar";
}
