import { createHash } from "node:crypto";
import {
  chmodSync, closeSync, fchmodSync, fchownSync, constants as fsConstants, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, rmSync, symlinkSync, writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { assertNever, type Digest } from "../../solver/llb/index.js";
import { mknod, mknodWhiteout, setXattr } from "../syscalls.js";
import { LayerError } from "./errors.js";
import { entryComponents, LayerTree, UnsafePathError } from "./layer-tree.js";
import { type TarBodySink, type TarHeader, TarFormatError, TarReader } from "./tar-reader.js";

export interface ApplyLayerOptions {
  /** Names the layer in errors (a blob digest, usually). */
  readonly layerName: string;
  /**
   * "overlay": `dir` is an overlay upperdir; `.wh.NAME` becomes a 0:0 character device and
   * `.wh..wh..opq` an opaque xattr. "native": `dir` is the full tree; whiteouts delete.
   */
  readonly whiteouts: "overlay" | "native";
  /** Mark opaque directories with `user.overlay.opaque` instead of `trusted.overlay.opaque`. */
  readonly userxattr?: boolean;
  /**
   * In overlay mode, the lower layers under `dir`, topmost first: parents are resolved in the
   * merged view (a symlink in a lower is followed, a directory only in a lower is created in `dir`).
   */
  readonly lowerdirs?: readonly string[];
  readonly signal?: AbortSignal;
}

export interface AppliedLayer {
  /** sha256 of the uncompressed tar bytes, as read. */
  readonly diffId: Digest;
  /** Bytes of the uncompressed tar. */
  readonly size: number;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
/** Bodies up to this size are gathered and written with one call; larger ones are streamed. */
const SMALL_FILE = 1 << 20;

/**
 * Applies an uncompressed layer tar to `dir`: regular files, directories, symlinks, hardlinks,
 * devices and fifos with their owners, modes, mtimes and xattrs (PAX `SCHILY.xattr.*`), and the
 * whiteouts described in `options.whiteouts`. An entry that would touch anything outside `dir`
 * (see LayerTree) is refused with a LayerError naming the layer and the entry; what was
 * applied before it stays, so the caller discards the snapshot. Parents resolve as containerd's
 * apply does: through symlinks, wherever they live in the merged view, but inside the root (an
 * absolute target restarts at the root, `..` stops there). Directory mtimes are set last,
 * after their contents stop changing them.
 * Xattr values are applied byte-exact (binary ones such as security.capability included): they
 * come from the PAX headers' raw bytes.
 *
 * The tar is read by TarReader, synchronously over each chunk the stream delivers, and every
 * filesystem call is synchronous: a layer is thousands of tiny syscalls, and a promise or a round
 * trip through libuv's thread pool per call cost more than the calls themselves.
 */
export async function applyLayer(tar: Readable, dir: string, options: ApplyLayerOptions): Promise<AppliedLayer> {
  const hash = createHash("sha256");
  let size = 0;
  const writer = new LayerWriter(dir, options);
  const reader = new TarReader((header, body) => writer.write(header, body), SMALL_FILE);
  try {
    for await (const chunk of tar) {
      options.signal?.throwIfAborted();
      const bytes = chunk as Buffer;
      hash.update(bytes);
      size += bytes.byteLength;
      reader.push(bytes);
    }
    options.signal?.throwIfAborted();
    reader.end();
  } catch (error) {
    tar.destroy();
    writer.abandon();
    if (error instanceof TarFormatError) {
      throw new LayerError("KILN_LAYER_INVALID", options.layerName, "", `Cannot apply layer "${options.layerName}": it is not a valid tar: ${error.message}`, { cause: error });
    }
    throw error;
  }
  writer.finish();
  return { diffId: `sha256:${hash.digest("hex")}` as Digest, size };
}

/** One layer being written; holds what later entries need (written paths, directory times). */
class LayerWriter {
  private readonly tree: LayerTree;
  /** Root-relative paths this layer created: a native opaque marker keeps them. */
  private readonly written = new Set<string>();
  private readonly dirTimes: { abs: string; mtime: number }[] = [];
  /** The large file being streamed, if any. */
  private open: { fd: number; header: TarHeader; abs: string } | undefined;
  private readonly euid = process.geteuid?.() ?? 0;
  private readonly egid = process.getegid?.() ?? 0;
  /** Permission bits the umask strips from a new file (then the mode is set again after open). */
  private readonly umask = readUmask();
  /** Directories (absolute) whose set-gid bit is known: set by this layer's entries, else looked up once. */
  private readonly setGidDirs = new Map<string, boolean>();

  constructor(
    private readonly dir: string,
    private readonly options: ApplyLayerOptions,
  ) {
    this.tree = new LayerTree(dir, {
      overlay: options.whiteouts === "overlay",
      ...(options.whiteouts === "overlay" && options.lowerdirs !== undefined ? { lowers: options.lowerdirs } : {}),
      ...(options.userxattr === undefined ? {} : { userxattr: options.userxattr }),
    });
  }

  /** TarReader's handler: `body` is the whole body, or undefined for a large file streamed to the returned sink. */
  write(header: TarHeader, body: Buffer | undefined): TarBodySink | undefined {
    try {
      return this.writeEntry(header, body);
    } catch (error) {
      throw this.entryError(header, error);
    }
  }

  /** Sets directory times, last: writing into a directory changes its mtime. */
  finish(): void {
    for (const { abs, mtime } of this.dirTimes.reverse()) lutimesSync(abs, mtime, mtime);
  }

  /** Closes a file left open by a failed read. */
  abandon(): void {
    if (this.open !== undefined) closeSync(this.open.fd);
    this.open = undefined;
  }

  private entryError(header: TarHeader, error: unknown): Error {
    if (error instanceof UnsafePathError) {
      return new LayerError("KILN_LAYER_UNSAFE_ENTRY", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" is refused because ${error.message}`);
    }
    if (error instanceof LayerError) return error;
    return new LayerError("KILN_LAYER_INVALID", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" failed: ${(error as Error).message}`, { cause: error });
  }

  private writeEntry(header: TarHeader, body: Buffer | undefined): TarBodySink | undefined {
    const parts = entryComponents(header.name);
    const base = parts.at(-1);
    if (base === undefined) {
      // The root itself ("./"): only its metadata can change.
      if (header.type !== "directory") throw new UnsafePathError("it would replace the root with a non-directory");
      this.setMetadata(this.dir, header);
      this.dirTimes.push({ abs: this.dir, mtime: header.mtime });
      return undefined;
    }
    const parent = this.tree.directory(parts.length === 1 ? NO_PARTS : parts.slice(0, -1));
    if (base === OPAQUE_MARKER) return this.opaque(parent);
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(parent, base.slice(WHITEOUT_PREFIX.length));
    const abs = join(parent.abs, base);
    const rel = parent.rel === "" ? base : `${parent.rel}/${base}`;
    const mode = header.mode & 0o7777;
    let sink: TarBodySink | undefined;
    switch (header.type) {
      case "directory": {
        const existing = lstatOrUndefined(abs);
        if (existing === undefined || !existing.isDirectory()) {
          this.clear(abs);
          mkdirSync(abs, { mode: 0o700 });
        }
        this.setMetadata(abs, header);
        this.dirTimes.push({ abs, mtime: header.mtime });
        break;
      }
      case "file":
      case "contiguous-file": {
        const fd = this.create(abs, () => openSync(abs, CREATE_FLAGS, mode & 0o777));
        if (body === undefined) {
          this.open = { fd, header, abs };
          sink = this.sink(header);
          break;
        }
        try {
          writeAll(fd, body);
          this.setFileMetadata(fd, abs, header);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case "symlink": {
        this.create(abs, () => symlinkSync(header.linkname ?? "", abs));
        this.tree.forget();
        this.setMetadata(abs, header);
        break;
      }
      case "link": {
        const linkname = header.linkname ?? "";
        const targetParts = entryComponents(linkname);
        const targetBase = targetParts.at(-1);
        if (targetBase === undefined) throw new UnsafePathError("it is a hardlink to the root");
        const targetParent = this.tree.directory(targetParts.slice(0, -1));
        const target = join(targetParent.abs, targetBase);
        const found = this.tree.find(targetParent.rel, targetBase);
        const stats = found?.stats;
        if (found === undefined || stats === undefined) throw new LayerError("KILN_LAYER_INVALID", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" is a hardlink to "${linkname}", which does not exist`);
        if (stats.isDirectory()) throw new UnsafePathError(`it is a hardlink to the directory "${linkname}"`);
        if (target === abs) break;
        // A hardlink to a lower layer's file: copy it up first, as overlayfs would before linking.
        if (found.abs !== target) {
          if (!stats.isFile()) throw new UnsafePathError(`it is a hardlink to "${linkname}", which is not a regular file`);
          this.clear(target);
          this.tree.copyUp(found.abs, stats, target);
          this.written.add(targetParent.rel === "" ? targetBase : `${targetParent.rel}/${targetBase}`);
        }
        this.create(abs, () => linkSync(target, abs));
        break;
      }
      case "character-device":
      case "block-device":
      case "fifo": {
        this.clear(abs);
        const kind = header.type === "fifo" ? "fifo" : header.type === "block-device" ? "block" : "char";
        mknod(abs, kind, mode, header.devmajor, header.devminor);
        this.setMetadata(abs, header);
        break;
      }
      case undefined:
        throw new LayerError("KILN_LAYER_UNSUPPORTED", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" has the unsupported type flag "${header.typeflag}"`);
      default:
        assertNever(header.type, "tar entry type");
    }
    this.written.add(rel);
    return sink;
  }

  /**
   * Runs `make` (which creates `abs` exclusively, never following what is there); when something
   * already is at `abs` it is removed first, as a layer's entry replaces it. Trying first saves a
   * stat per entry: in a fresh upperdir nothing is ever there.
   */
  private create<T>(abs: string, make: () => T): T {
    try {
      return make();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    this.clear(abs);
    return make();
  }

  /** The sink of a large file opened by writeEntry: writes it piece by piece, then sets its metadata. */
  private sink(header: TarHeader): TarBodySink {
    return {
      write: (bytes) => {
        const open = this.open;
        if (open === undefined) return;
        try {
          writeAll(open.fd, bytes);
        } catch (error) {
          this.abandon();
          throw this.entryError(header, error);
        }
      },
      end: () => {
        const open = this.open;
        if (open === undefined) return;
        this.open = undefined;
        try {
          this.setFileMetadata(open.fd, open.abs, header);
        } catch (error) {
          throw this.entryError(header, error);
        } finally {
          closeSync(open.fd);
        }
      },
    };
  }

  private whiteout(parent: { abs: string; rel: string }, name: string): undefined {
    if (name === "" || name === "." || name === ".." || name.includes("/")) throw new UnsafePathError(`it whites out the invalid name "${name}"`);
    const abs = join(parent.abs, name);
    this.clear(abs);
    if (this.options.whiteouts === "overlay") {
      mknodWhiteout(abs);
      this.written.add(parent.rel === "" ? name : `${parent.rel}/${name}`);
    }
    this.tree.forget();
    return undefined;
  }

  private opaque(parent: { abs: string; rel: string }): undefined {
    if (this.options.whiteouts === "overlay") {
      setXattr(parent.abs, this.options.userxattr === true ? "user.overlay.opaque" : "trusted.overlay.opaque", Buffer.from("y"));
      this.tree.forget();
      return undefined;
    }
    for (const name of readdirSync(parent.abs)) {
      const rel = parent.rel === "" ? name : `${parent.rel}/${name}`;
      if (!this.written.has(rel)) this.clear(join(parent.abs, name));
    }
    return undefined;
  }

  /** Removes whatever is at `abs` (never following a symlink there). */
  private clear(abs: string): void {
    const existing = lstatOrUndefined(abs);
    if (existing === undefined) return;
    if (existing.isDirectory()) {
      this.tree.forget();
      this.setGidDirs.clear();
    }
    rmSync(abs, { recursive: true, force: true });
  }

  /**
   * A regular file's owner, mode, xattrs and times, through its descriptor. The owner is set only
   * when the file was not created with it, and the mode again only when open's could not be exact
   * (set-id bits, which chown would clear anyway, or bits the umask took).
   */
  private setFileMetadata(fd: number, abs: string, header: TarHeader): void {
    const mode = header.mode & 0o7777;
    if (header.uid !== this.euid || header.gid !== this.egid) fchownSync(fd, header.uid, header.gid);
    else if (this.parentMaySetGid(abs)) fchownSync(fd, header.uid, header.gid);
    if ((mode & ~0o777) !== 0 || (mode & this.umask) !== 0) fchmodSync(fd, mode);
    if (header.pax !== undefined) for (const [name, value] of xattrsOf(header.pax)) setXattr(abs, name, value);
    futimesSync(fd, header.mtime, header.mtime);
  }

  /** Whether `abs`'s directory has the set-gid bit, which makes a new file take the directory's group. */
  private parentMaySetGid(abs: string): boolean {
    const parent = abs.slice(0, abs.lastIndexOf("/"));
    let known = this.setGidDirs.get(parent);
    if (known === undefined) {
      known = ((lstatOrUndefined(parent)?.mode ?? 0) & 0o2000) !== 0;
      this.setGidDirs.set(parent, known);
    }
    return known;
  }

  /** Owner, then mode (chown clears set-id bits), xattrs and, for non-directories, times. */
  private setMetadata(abs: string, header: TarHeader): void {
    const isLink = header.type === "symlink";
    lchownSync(abs, header.uid, header.gid);
    if (!isLink) chmodSync(abs, header.mode & 0o7777);
    if (header.pax !== undefined) for (const [name, value] of xattrsOf(header.pax)) setXattr(abs, name, value);
    if (header.type === "directory") this.setGidDirs.set(abs, ((header.mode & 0o2000) !== 0));
    else lutimesSync(abs, header.mtime, header.mtime);
  }
}

const NO_PARTS: readonly string[] = [];
const CREATE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

function writeAll(fd: number, bytes: Buffer): void {
  let at = 0;
  while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
}

/**
 * The process umask, read by setting it and back (Node has no read-only accessor). In a worker
 * thread, where that is not allowed, every bit counts as masked, so modes are always set again.
 */
function readUmask(): number {
  try {
    const mask = process.umask(0o022);
    process.umask(mask);
    return mask;
  } catch {
    return 0o777;
  }
}

/** The xattrs of an entry's raw PAX records (SCHILY.xattr.* and LIBARCHIVE.xattr.*), minus overlay's own. */
function xattrsOf(pax: ReadonlyMap<string, Buffer> | undefined): [string, Buffer][] {
  const result: [string, Buffer][] = [];
  for (const [key, value] of pax ?? []) {
    let name: string;
    let bytes: Buffer;
    if (key.startsWith("SCHILY.xattr.")) {
      name = key.slice("SCHILY.xattr.".length);
      bytes = value;
    } else if (key.startsWith("LIBARCHIVE.xattr.")) {
      name = decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length));
      bytes = Buffer.from(value.toString("latin1"), "base64");
    } else {
      continue;
    }
    // Overlay's own metadata comes only from whiteout entries, never from a layer's xattrs.
    if (name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")) continue;
    result.push([name, bytes]);
  }
  return result;
}

function lstatOrUndefined(abs: string) {
  try {
    return lstatSync(abs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
