import { parsePaxRecords } from "./pax-records.js";

/** The entry types a layer can hold, named as tar-stream names them. */
export type TarEntryType = "file" | "link" | "symlink" | "character-device" | "block-device" | "directory" | "fifo" | "contiguous-file";

/** One entry's header, with GNU long names and PAX `path`/`linkpath`/`size` applied. */
export interface TarHeader {
  readonly name: string;
  /** undefined for a typeflag no layer should hold (the caller refuses it); `typeflag` says which. */
  readonly type: TarEntryType | undefined;
  readonly typeflag: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Body bytes (0 for a directory whatever its size field says, as tar-stream reads it). */
  readonly size: number;
  /** Seconds since the epoch, from the ustar field (PAX `mtime` is not applied, as tar-stream). */
  readonly mtime: number;
  /** undefined when the field is empty. */
  readonly linkname: string | undefined;
  readonly devmajor: number;
  readonly devminor: number;
  /** The raw records of the PAX header before this entry (globals merged under them), values byte-exact. */
  readonly pax: ReadonlyMap<string, Buffer> | undefined;
}

/** Where a large entry's body goes, piece by piece, synchronously. */
export interface TarBodySink {
  write(bytes: Buffer): void;
  end(): void;
}

/**
 * Called once per entry. A body of at most `wholeBodyLimit` bytes comes whole in `body` (a view
 * into the pushed chunk when it lies in one; valid only during the call) and the return value is
 * ignored; a larger body comes with `body` undefined, and the returned sink receives it.
 */
export type TarEntryHandler = (header: TarHeader, body: Buffer | undefined) => TarBodySink | void;

/** A tar stream that cannot be read: a bad checksum, an unknown format, a truncated archive. */
export class TarFormatError extends Error {}

const BLOCK = 512;
/** GNU long names and PAX headers larger than this are refused (tar-stream's limit too). */
const MAX_META = 1 << 20;
const USTAR_MAGIC = Buffer.from("ustar\0", "latin1");
const GNU_MAGIC = Buffer.from("ustar ", "latin1");
const GNU_VERSION = Buffer.from(" \0", "latin1");

type State =
  | { kind: "header" }
  | { kind: "meta"; typeflag: string; body: Buffer; fill: number; padding: number }
  | { kind: "whole"; header: TarHeader; body: Buffer | undefined; fill: number; padding: number }
  | { kind: "stream"; sink: TarBodySink | undefined; left: number; padding: number }
  | { kind: "skip"; left: number };

/**
 * A synchronous tar reader over the buffers of a stream, as tar-stream's extract reads a layer
 * (the same headers, names, types and PAX handling) but without a stream and a promise per entry:
 * `push(chunk)` parses every header the chunk completes and calls the handler in place, so a
 * chunk of a thousand small files is a thousand plain function calls. Zero blocks are skipped;
 * `end()` throws when the archive stops inside a header or a body.
 */
export class TarReader {
  readonly #handler: TarEntryHandler;
  readonly #wholeBodyLimit: number;
  #state: State = { kind: "header" };
  readonly #block = Buffer.alloc(BLOCK);
  #blockFill = 0;
  #globalPax: Map<string, Buffer> | undefined;
  #pax: Map<string, Buffer> | undefined;
  #longName: string | undefined;
  #longLink: string | undefined;

  constructor(handler: TarEntryHandler, wholeBodyLimit: number) {
    this.#handler = handler;
    this.#wholeBodyLimit = wholeBodyLimit;
  }

  push(chunk: Buffer): void {
    let at = 0;
    const length = chunk.byteLength;
    while (at < length) {
      const state = this.#state;
      switch (state.kind) {
        case "header": {
          if (this.#blockFill === 0 && length - at >= BLOCK) {
            this.#onHeader(chunk.subarray(at, at + BLOCK));
            at += BLOCK;
            break;
          }
          const n = Math.min(BLOCK - this.#blockFill, length - at);
          chunk.copy(this.#block, this.#blockFill, at, at + n);
          this.#blockFill += n;
          at += n;
          if (this.#blockFill === BLOCK) {
            this.#blockFill = 0;
            this.#onHeader(this.#block);
          }
          break;
        }
        case "meta": {
          const n = Math.min(state.body.byteLength - state.fill, length - at);
          chunk.copy(state.body, state.fill, at, at + n);
          state.fill += n;
          at += n;
          if (state.fill === state.body.byteLength) {
            this.#state = { kind: "skip", left: state.padding };
            this.#onMeta(state.typeflag, state.body);
          }
          break;
        }
        case "whole": {
          const size = state.header.size;
          if (state.fill === 0 && length - at >= size) {
            // The whole body lies in this chunk: hand a view of it, no copy.
            const body = chunk.subarray(at, at + size);
            at += size;
            this.#state = { kind: "skip", left: state.padding };
            this.#handler(state.header, body);
            break;
          }
          state.body ??= Buffer.allocUnsafe(size);
          const n = Math.min(size - state.fill, length - at);
          chunk.copy(state.body, state.fill, at, at + n);
          state.fill += n;
          at += n;
          if (state.fill === size) {
            this.#state = { kind: "skip", left: state.padding };
            this.#handler(state.header, state.body);
          }
          break;
        }
        case "stream": {
          const n = Math.min(state.left, length - at);
          state.sink?.write(chunk.subarray(at, at + n));
          state.left -= n;
          at += n;
          if (state.left === 0) {
            this.#state = { kind: "skip", left: state.padding };
            state.sink?.end();
          }
          break;
        }
        case "skip": {
          const n = Math.min(state.left, length - at);
          state.left -= n;
          at += n;
          if (state.left === 0) this.#state = { kind: "header" };
          break;
        }
      }
    }
    // A body or padding that ends exactly at the chunk's end is complete.
    const state = this.#state;
    if (state.kind === "skip" && state.left === 0) this.#state = { kind: "header" };
  }

  /** The archive ended: throws when it stopped inside a header or a body. */
  end(): void {
    if (this.#state.kind !== "header" || this.#blockFill !== 0) throw new TarFormatError("the archive ends in the middle of an entry");
  }

  #onHeader(block: Buffer): void {
    const sum = checksum(block);
    if (sum === 8 * 32) return; // a zero block: end-of-archive or padding
    if (sum !== octal(block, 148, 8)) throw new TarFormatError("a header's checksum is wrong (is the layer still compressed?)");
    const ustar = block.compare(USTAR_MAGIC, 0, 6, 257, 263) === 0;
    if (!ustar && !(block.compare(GNU_MAGIC, 0, 6, 257, 263) === 0 && block.compare(GNU_VERSION, 0, 2, 263, 265) === 0)) {
      throw new TarFormatError("a header is in an unknown format");
    }
    const typeflag = block[156] === 0 ? "0" : String.fromCharCode(block[156] as number);
    const fieldSize = octal(block, 124, 12);
    if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
      if (fieldSize > MAX_META) throw new TarFormatError(`a ${typeflag} header of ${fieldSize} bytes is larger than allowed`);
      const padding = pad(fieldSize);
      if (fieldSize === 0) {
        this.#onMeta(typeflag, Buffer.alloc(0));
        return;
      }
      this.#state = { kind: "meta", typeflag, body: Buffer.allocUnsafe(fieldSize), fill: 0, padding };
      return;
    }
    let headerName = text(block, 0, 100);
    if (ustar && block[345] !== 0) headerName = `${text(block, 345, 155)}/${headerName}`;
    let name = this.#longName ?? headerName;
    let linkname = this.#longLink ?? (block[157] === 0 ? undefined : text(block, 157, 100));
    this.#longName = undefined;
    this.#longLink = undefined;
    let size = fieldSize;
    const pax = this.#pax;
    this.#pax = undefined;
    if (pax !== undefined) {
      const path = pax.get("path");
      if (path !== undefined && path.byteLength > 0) name = path.toString("utf8");
      const linkpath = pax.get("linkpath");
      if (linkpath !== undefined && linkpath.byteLength > 0) linkname = linkpath.toString("utf8");
      const paxSize = pax.get("size");
      if (paxSize !== undefined && paxSize.byteLength > 0) size = parseInt(paxSize.toString("latin1"), 10);
    }
    // Old tars mark directories with a trailing slash on a regular-file entry (the header's own name, as tar-stream).
    const type = typeflag === "0" && headerName.endsWith("/") ? "directory" : typeOf(typeflag);
    if (!(size >= 0)) throw new TarFormatError(`entry "${name}" has an invalid size`);
    if (type === "directory") size = 0;
    const header: TarHeader = {
      name, type, typeflag, size, linkname, pax,
      mode: octal(block, 100, 8),
      uid: octal(block, 108, 8),
      gid: octal(block, 116, 8),
      mtime: octal(block, 136, 12),
      devmajor: octal(block, 329, 8),
      devminor: octal(block, 337, 8),
    };
    if (size === 0) {
      this.#handler(header, EMPTY);
      return;
    }
    if (size <= this.#wholeBodyLimit) {
      this.#state = { kind: "whole", header, body: undefined, fill: 0, padding: pad(size) };
      return;
    }
    const sink = this.#handler(header, undefined);
    this.#state = { kind: "stream", sink: sink ?? undefined, left: size, padding: pad(size) };
  }

  #onMeta(typeflag: string, body: Buffer): void {
    switch (typeflag) {
      case "L":
        this.#longName = text(body, 0, body.byteLength);
        return;
      case "K":
        this.#longLink = text(body, 0, body.byteLength);
        return;
      case "g":
        this.#globalPax = new Map(parsePaxRecords(body));
        return;
      default: {
        // As tar-stream: a local header gets the globals under its own records; globals alone change nothing.
        const merged = new Map(this.#globalPax);
        for (const [key, value] of parsePaxRecords(body)) merged.set(key, value);
        this.#pax = merged;
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function typeOf(typeflag: string): TarEntryType | undefined {
  switch (typeflag) {
    case "0":
      return "file";
    case "1":
      return "link";
    case "2":
      return "symlink";
    case "3":
      return "character-device";
    case "4":
      return "block-device";
    case "5":
      return "directory";
    case "6":
      return "fifo";
    case "7":
      return "contiguous-file";
    default:
      return undefined;
  }
}

function checksum(block: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i] as number;
  for (let i = 156; i < BLOCK; i++) sum += block[i] as number;
  return sum;
}

/** A numeric field: octal text (leading spaces and NULs skipped, ending at a space or NUL), or GNU base-256. */
function octal(block: Buffer, offset: number, length: number): number {
  const end = offset + length;
  const first = block[offset] as number;
  if ((first & 0x80) !== 0) {
    if (first !== 0x80 && first !== 0xff) return NaN;
    const positive = first === 0x80;
    let value = 0;
    for (let i = offset + 1; i < end; i++) value = value * 256 + (positive ? (block[i] as number) : 0xff - (block[i] as number));
    return positive ? value : -value;
  }
  let i = offset;
  while (i < end && block[i] === 0x20) i++;
  while (i < end && block[i] === 0) i++;
  // As tar-stream's parseInt: the digits end at the first byte that is not one.
  let value = 0;
  let digits = 0;
  for (let j = i; j < end; j++) {
    const d = (block[j] as number) - 0x30;
    if (d < 0 || d > 7) break;
    value = value * 8 + d;
    digits++;
  }
  return digits === 0 ? 0 : value;
}

/** A NUL-terminated UTF-8 string field. */
function text(block: Buffer, offset: number, length: number): string {
  let end = block.indexOf(0, offset);
  if (end === -1 || end > offset + length) end = offset + length;
  return block.toString("utf8", offset, end);
}
