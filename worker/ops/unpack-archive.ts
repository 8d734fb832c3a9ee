import { createWriteStream } from "node:fs";
import { chmod, lchown, link, lstat, lutimes, mkdir, rm, symlink } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import { KilnError } from "../../solver/llb/index.js";
import { hostPath, lstatEntry, splitPath } from "../fs/index.js";
import { mknod, setXattr } from "../syscalls.js";
import { openDecompressed, type Compression } from "./archive-detect.js";
import type { Owner } from "./fs-copy.js";

/** An archive that ADD cannot unpack: corrupt data, an unsupported entry type, or a failed write. */
export class ArchiveUnpackError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_ARCHIVE_UNPACK_FAILED", message, options);
  }
}

/** An archive entry that would land outside the destination (by `..`, or a link pointing out of it). */
export class ArchiveEntryEscapeError extends KilnError {
  readonly archive: string;
  readonly entry: string;
  constructor(archive: string, entry: string, why: string) {
    super("KILN_ARCHIVE_ENTRY_ESCAPES", `Cannot unpack "${archive}": entry "${entry}" is refused because ${why}`);
    this.archive = archive;
    this.entry = entry;
  }
}

export interface UnpackOptions {
  /** Names the archive in errors (its path in the source tree). */
  readonly archiveName: string;
  readonly compression: Compression;
  /** `--chown`: the owner of every entry; absent: entries keep the archive's uid and gid. */
  readonly owner?: Owner;
  readonly signal?: AbortSignal;
}

/** Thrown inside path resolution; turned into an ArchiveEntryEscapeError naming the entry. */
class Escape extends Error {}

const MAX_SYMLINKS = 255;

/**
 * Unpacks the tar archive at `archive` (host path; `compression` as `archiveCompression` found
 * it) into the existing directory `destDir`, as moby/go-archive's Untar does for ADD
 * (`tar -x` semantics): the result is the union of what was there and the archive's entries,
 * the archive winning file by file (an existing directory is merged into when the entry is a
 * directory too, anything else in the way is replaced). Entries keep their modes, owners
 * (unless `owner`), mtimes, PAX `SCHILY.xattr.*` xattrs (best effort), symlinks, hardlinks,
 * devices and fifos; directory times are set last. Missing parents are created 0755, 0:0.
 *
 * Paths resolve as if `destDir` were the root (BuildKit unpacks in a chroot there): an absolute
 * entry name or symlink target starts at `destDir`, and symlinks met on the way are followed
 * inside it. Unlike a chroot, which silently clamps, an entry whose name climbs above
 * `destDir` with `..`, a symlink whose target does, a hardlink to a path outside, or a path
 * that leaves `destDir` through a symlink is refused with an ArchiveEntryEscapeError naming
 * the archive and the entry. Entries written before a failure stay: the caller discards the tree.
 */
export async function unpackArchive(archive: string, destDir: string, options: UnpackOptions): Promise<void> {
  const input = openDecompressed(archive, options.compression, options.signal);
  const extract = tarStream.extract();
  const writer = new ArchiveWriter(destDir, options);
  const entries = (async () => {
    for await (const entry of extract) {
      options.signal?.throwIfAborted();
      await writer.write(entry.header, entry);
    }
  })();
  const [read, written] = await Promise.allSettled([pipeline(input, extract, ...(options.signal === undefined ? [] : [{ signal: options.signal }])), entries]);
  if (written.status === "rejected") input.destroy();
  options.signal?.throwIfAborted();
  // A broken stream also fails the entry being written: the stream's error says more.
  // (When the writer stops first, the stream only reports that it was closed early.)
  if (read.status === "rejected" && (read.reason as NodeJS.ErrnoException).code !== "ERR_STREAM_PREMATURE_CLOSE") {
    const reason = read.reason as Error;
    throw new ArchiveUnpackError(`Cannot unpack "${options.archiveName}" (${options.compression === "none" ? "tar" : `${options.compression}-compressed tar`}): the archive is corrupt or truncated: ${reason.message}`, { cause: reason });
  }
  if (written.status === "rejected") throw written.reason;
  await writer.finish();
}

type Header = tarStream.Header;
type Body = AsyncIterable<unknown>;

class ArchiveWriter {
  private readonly dirTimes: { abs: string; mtime: Date }[] = [];

  constructor(
    private readonly root: string,
    private readonly options: UnpackOptions,
  ) {}

  async write(header: Header, body: Body): Promise<void> {
    try {
      await this.writeEntry(header, body);
    } catch (error) {
      if (error instanceof Escape) throw new ArchiveEntryEscapeError(this.options.archiveName, header.name, error.message);
      if (error instanceof KilnError) throw error;
      throw new ArchiveUnpackError(`Cannot unpack "${this.options.archiveName}": entry "${header.name}" failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async finish(): Promise<void> {
    for (const { abs, mtime } of this.dirTimes.reverse()) await lutimes(abs, mtime, mtime);
  }

  private async writeEntry(header: Header, body: Body): Promise<void> {
    if ((header.type as string) === "pax-global-header") return drain(body);
    const name = lexicalParts(header.name, "its name climbs above the destination with \"..\"");
    const base = name.at(-1);
    if (base === undefined) {
      // "." (or "/"): the destination itself, which exists as a directory; BuildKit skips it.
      return drain(body);
    }
    const parent = await this.resolveParent(name.slice(0, -1));
    const abs = hostPath(this.root, [...parent, base]);
    const existing = await lstat(abs).catch(() => undefined);
    if (existing !== undefined && !(existing.isDirectory() && header.type === "directory")) await rm(abs, { recursive: true, force: true });
    const mode = (header.mode ?? 0o644) & 0o7777;
    switch (header.type) {
      case "directory":
        await drain(body);
        if (existing === undefined || !existing.isDirectory()) await mkdir(abs, { mode: 0o700 });
        break;
      case "file":
      case "contiguous-file":
        await pipeline(body, createWriteStream(abs, { flags: "wx", mode: 0o600 }));
        break;
      case "symlink": {
        await drain(body);
        const target = header.linkname ?? "";
        // go-archive: the target, taken from the symlink's own directory, must stay inside.
        if (!target.startsWith("/")) lexicalParts([...name.slice(0, -1), target].join("/"), `it is a symlink to "${target}", outside the destination`);
        await symlink(target, abs);
        break;
      }
      case "link": {
        await drain(body);
        const target = header.linkname ?? "";
        const targetParts = lexicalParts(target, `it is a hardlink to "${target}", outside the destination`);
        const targetBase = targetParts.at(-1);
        if (targetBase === undefined) throw new Escape(`it is a hardlink to the destination directory itself`);
        const targetParent = await this.resolveParent(targetParts.slice(0, -1));
        await link(hostPath(this.root, [...targetParent, targetBase]), abs);
        break;
      }
      case "character-device":
      case "block-device":
      case "fifo":
        await drain(body);
        mknod(abs, header.type === "fifo" ? "fifo" : header.type === "block-device" ? "block" : "char", mode, header.devmajor ?? 0, header.devminor ?? 0);
        break;
      default:
        await drain(body);
        throw new ArchiveUnpackError(`Cannot unpack "${this.options.archiveName}": entry "${header.name}" has the unsupported type "${String(header.type)}"`);
    }
    await this.setMetadata(abs, header, mode);
  }

  /**
   * The real directories (root-relative components) that `parts` names, following symlinks
   * inside the root, creating missing ones (0755, 0:0) as go-archive's implied directories.
   */
  private async resolveParent(parts: readonly string[]): Promise<string[]> {
    const pending = [...parts];
    const resolved: string[] = [];
    let links = 0;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === "..") {
        if (resolved.length === 0) throw new Escape("its path leaves the destination through a symlink");
        resolved.pop();
        continue;
      }
      resolved.push(part);
      const host = hostPath(this.root, resolved);
      const entry = lstatEntry(host);
      if (entry.kind === "symlink") {
        if (++links > MAX_SYMLINKS) throw new ArchiveUnpackError(`Cannot unpack "${this.options.archiveName}": too many levels of symbolic links under "${resolved.join("/")}"`);
        resolved.pop();
        if (entry.target.startsWith("/")) resolved.length = 0;
        pending.unshift(...splitPath(entry.target));
      } else if (entry.kind === "missing") {
        await mkdir(host, { mode: 0o755 });
        await chmod(host, 0o755);
        await lchown(host, 0, 0);
      } else if (entry.kind === "other") {
        throw new ArchiveUnpackError(`Cannot unpack "${this.options.archiveName}": "${resolved.join("/")}" is not a directory`);
      }
    }
    return resolved;
  }

  /** Owner, then mode (chown clears set-id bits), xattrs and times, as go-archive's createTarFile. */
  private async setMetadata(abs: string, header: Header, mode: number): Promise<void> {
    const owner = this.options.owner ?? { uid: header.uid ?? 0, gid: header.gid ?? 0 };
    await lchown(abs, owner.uid, owner.gid);
    if (header.type !== "symlink") await chmod(abs, mode);
    for (const [name, value] of Object.entries((header.pax ?? {}) as Record<string, string>)) {
      if (!name.startsWith("SCHILY.xattr.")) continue;
      try {
        setXattr(abs, name.slice("SCHILY.xattr.".length), Buffer.from(value, "utf8"));
      } catch {
        // Best effort, as BuildKit's BestEffortXattrs: a filesystem that refuses one is not fatal.
      }
    }
    const mtime = boundTime(header.mtime);
    if (header.type === "directory") this.dirTimes.push({ abs, mtime });
    else await lutimes(abs, mtime, mtime);
  }
}

/** An entry's cleaned components, relative to the root ("/a/../b" → ["b"]); `..` above the root throws `why`. */
function lexicalParts(path: string, why: string): string[] {
  const out: string[] = [];
  for (const part of splitPath(path)) {
    if (part !== "..") out.push(part);
    else if (out.pop() === undefined) {
      // An absolute path's ".." stops at "/", as Go's filepath.Clean does.
      if (!path.startsWith("/")) throw new Escape(why);
    }
  }
  return out;
}

/** go-archive's boundTime: times before the epoch (or unrepresentable) become the epoch. */
function boundTime(time: Date | undefined): Date {
  if (time === undefined || Number.isNaN(time.getTime()) || time.getTime() < 0) return new Date(0);
  return time;
}

async function drain(body: Body): Promise<void> {
  for await (const _ of body);
}
