import { createHash } from "node:crypto";
import { chmodSync, createWriteStream, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import type { Digest } from "../../solver/llb/index.js";
import { mknod, mknodWhiteout, setXattr } from "../syscalls.js";
import { LayerError } from "./errors.js";
import { entryComponents, LayerTree, UnsafePathError } from "./layer-tree.js";
import { PaxRecorder } from "./pax-records.js";

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
/**
 * Bodies up to this size are gathered and written with one call; larger ones are streamed. The
 * per-entry metadata calls are synchronous: a layer is thousands of tiny syscalls, and a round
 * trip through libuv's thread pool for each one (about seven per file) cost more than the calls.
 */
const SMALL_FILE = 1 << 20;

/**
 * Applies an uncompressed layer tar to `dir`: regular files, directories, symlinks, hardlinks,
 * devices and fifos with their owners, modes, mtimes and xattrs (PAX `SCHILY.xattr.*`), and the
 * whiteouts described in `options.whiteouts`. An entry that would touch anything outside `dir`
 * (see LayerTree) is refused with a LayerError naming the layer and the entry; what was
 * applied before it stays, so the caller discards the snapshot. Parents resolve as containerd's
apply does: through symlinks, wherever they live in the merged view, but inside the root (an
absolute target restarts at the root, `..` stops there). Directory mtimes are set last,
 * after their contents stop changing them.
 * Xattr values are applied byte-exact (binary ones such as security.capability included): they
 * come from the PAX headers' raw bytes (PaxRecorder), not tar-stream's UTF-8 decoding of them.
 */
export async function applyLayer(tar: Readable, dir: string, options: ApplyLayerOptions): Promise<AppliedLayer> {
  const hash = createHash("sha256");
  const pax = new PaxRecorder();
  let size = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      pax.push(chunk);
      size += chunk.byteLength;
      callback(null, chunk);
    },
  });
  const extract = tarStream.extract();
  const writer = new LayerWriter(dir, options);
  const entries = (async () => {
    for await (const entry of extract) {
      options.signal?.throwIfAborted();
      // Every entry tar-stream gives a `pax` came after a PAX header: take that header's raw records.
      const raw = entry.header.pax === undefined || entry.header.pax === null ? undefined : pax.take();
      await writer.write(entry.header, entry, raw);
    }
  })();
  const [read, written] = await Promise.allSettled([
    pipeline(tar, hasher, extract, ...(options.signal === undefined ? [] : [{ signal: options.signal }])),
    entries,
  ]);
  if (written.status === "rejected") {
    tar.destroy();
    throw written.reason;
  }
  if (read.status === "rejected") throw read.reason;
  await writer.finish();
  return { diffId: `sha256:${hash.digest("hex")}` as Digest, size };
}

type EntryHeader = tarStream.Header;
/** An entry's body: tar-stream's (streamx) readable, consumed as an async iterable. */
type EntryBody = AsyncIterable<unknown>;

/** One layer being written; holds what later entries need (written paths, directory times). */
class LayerWriter {
  private readonly tree: LayerTree;
  /** Root-relative paths this layer created: a native opaque marker keeps them. */
  private readonly written = new Set<string>();
  private readonly dirTimes: { abs: string; mtime: Date }[] = [];

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

  async write(header: EntryHeader, body: EntryBody, pax?: ReadonlyMap<string, Buffer>): Promise<void> {
    try {
      await this.writeEntry(header, body, pax);
    } catch (error) {
      if (error instanceof UnsafePathError) {
        throw new LayerError("KILN_LAYER_UNSAFE_ENTRY", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" is refused because ${error.message}`);
      }
      if (error instanceof LayerError) throw error;
      throw new LayerError("KILN_LAYER_INVALID", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async finish(): Promise<void> {
    for (const { abs, mtime } of this.dirTimes.reverse()) lutimesSync(abs, mtime, mtime);
  }

  private async writeEntry(header: EntryHeader, body: EntryBody, pax: ReadonlyMap<string, Buffer> | undefined): Promise<void> {
    const parts = entryComponents(header.name);
    const base = parts.at(-1);
    if (base === undefined) {
      // The root itself ("./"): only its metadata can change.
      if (header.type !== "directory") throw new UnsafePathError("it would replace the root with a non-directory");
      await drain(body);
      await this.setMetadata(this.dir, header, pax);
      this.dirTimes.push({ abs: this.dir, mtime: header.mtime ?? new Date(0) });
      return;
    }
    const parent = this.tree.directory(parts.slice(0, -1));
    if (base === OPAQUE_MARKER) {
      await drain(body);
      return this.opaque(parent);
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      await drain(body);
      return this.whiteout(parent, base.slice(WHITEOUT_PREFIX.length));
    }
    const abs = join(parent.abs, base);
    const rel = parent.rel === "" ? base : `${parent.rel}/${base}`;
    const mode = (header.mode ?? 0o644) & 0o7777;
    switch (header.type) {
      case "directory": {
        await drain(body);
        const existing = lstatOrUndefined(abs);
        if (existing === undefined || !existing.isDirectory()) {
          await this.clear(abs);
          mkdirSync(abs, { mode: 0o700 });
        }
        await this.setMetadata(abs, header, pax);
        this.dirTimes.push({ abs, mtime: header.mtime ?? new Date(0) });
        break;
      }
      case "file":
      case "contiguous-file": {
        await this.clear(abs);
        await writeBody(abs, body, header.size ?? 0);
        await this.setMetadata(abs, header, pax);
        break;
      }
      case "symlink": {
        await drain(body);
        await this.clear(abs);
        symlinkSync(header.linkname ?? "", abs);
        this.tree.forget();
        await this.setMetadata(abs, header, pax);
        break;
      }
      case "link": {
        await drain(body);
        const targetParts = entryComponents(header.linkname ?? "");
        const targetBase = targetParts.at(-1);
        if (targetBase === undefined) throw new UnsafePathError("it is a hardlink to the root");
        const targetParent = this.tree.directory(targetParts.slice(0, -1));
        const target = join(targetParent.abs, targetBase);
        const found = this.tree.find(targetParent.rel, targetBase);
        const stats = found?.stats;
        if (found === undefined || stats === undefined) throw new LayerError("KILN_LAYER_INVALID", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" is a hardlink to "${header.linkname ?? ""}", which does not exist`);
        if (stats.isDirectory()) throw new UnsafePathError(`it is a hardlink to the directory "${header.linkname ?? ""}"`);
        if (target === abs) break;
        // A hardlink to a lower layer's file: copy it up first, as overlayfs would before linking.
        if (found.abs !== target) {
          if (!stats.isFile()) throw new UnsafePathError(`it is a hardlink to "${header.linkname ?? ""}", which is not a regular file`);
          await this.clear(target);
          this.tree.copyUp(found.abs, stats, target);
        }
        await this.clear(abs);
        linkSync(target, abs);
        break;
      }
      case "character-device":
      case "block-device":
      case "fifo": {
        await drain(body);
        await this.clear(abs);
        const kind = header.type === "fifo" ? "fifo" : header.type === "block-device" ? "block" : "char";
        mknod(abs, kind, mode, header.devmajor ?? 0, header.devminor ?? 0);
        await this.setMetadata(abs, header, pax);
        break;
      }
      default:
        await drain(body);
        throw new LayerError("KILN_LAYER_UNSUPPORTED", this.options.layerName, header.name, `Cannot apply layer "${this.options.layerName}": entry "${header.name}" has the unsupported type "${String(header.type)}"`);
    }
    this.written.add(rel);
  }

  private async whiteout(parent: { abs: string; rel: string }, name: string): Promise<void> {
    if (name === "" || name === "." || name === ".." || name.includes("/")) throw new UnsafePathError(`it whites out the invalid name "${name}"`);
    const abs = join(parent.abs, name);
    await this.clear(abs);
    if (this.options.whiteouts === "overlay") mknodWhiteout(abs);
    this.tree.forget();
  }

  private async opaque(parent: { abs: string; rel: string }): Promise<void> {
    if (this.options.whiteouts === "overlay") {
      setXattr(parent.abs, this.options.userxattr === true ? "user.overlay.opaque" : "trusted.overlay.opaque", Buffer.from("y"));
      this.tree.forget();
      return;
    }
    for (const name of await readdir(parent.abs)) {
      const rel = parent.rel === "" ? name : `${parent.rel}/${name}`;
      if (!this.written.has(rel)) await this.clear(join(parent.abs, name));
    }
  }

  /** Removes whatever is at `abs` (never following a symlink there). */
  private async clear(abs: string): Promise<void> {
    const existing = lstatOrUndefined(abs);
    if (existing === undefined) return;
    if (existing.isDirectory()) this.tree.forget();
    await rm(abs, { recursive: true, force: true });
  }

  /** Owner, then mode (chown clears set-id bits), xattrs and, for non-directories, times. */
  private async setMetadata(abs: string, header: EntryHeader, pax: ReadonlyMap<string, Buffer> | undefined): Promise<void> {
    const isLink = header.type === "symlink";
    lchownSync(abs, header.uid ?? 0, header.gid ?? 0);
    if (!isLink) chmodSync(abs, (header.mode ?? 0o644) & 0o7777);
    for (const [name, value] of xattrsOf(pax)) setXattr(abs, name, value);
    if (header.type !== "directory") {
      const mtime = header.mtime ?? new Date(0);
      lutimesSync(abs, mtime, mtime);
    }
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

async function writeBody(abs: string, body: EntryBody, size: number): Promise<void> {
  if (size <= SMALL_FILE) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    writeFileSync(abs, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks), { flag: "wx", mode: 0o600 });
    return;
  }
  await pipeline(body, createWriteStream(abs, { flags: "wx", mode: 0o600 }));
}

async function drain(body: EntryBody): Promise<void> {
  for await (const _ of body);
}

function lstatOrUndefined(abs: string) {
  try {
    return lstatSync(abs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
