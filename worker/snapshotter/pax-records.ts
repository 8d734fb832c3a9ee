/**
 * The raw bytes of a tar stream's PAX extended headers, in stream order. tar-stream decodes PAX
 * values as UTF-8 text, which corrupts binary xattrs (`SCHILY.xattr.security.capability` holds a
 * little-endian struct); this reader watches the same bytes (fed chunk by chunk, ahead of the
 * extractor) and keeps each PAX header's records as Buffers, so the entry that follows gets its
 * xattr values byte-exact.
 *
 * It frames the archive only: 512-byte headers, bodies skipped by their size (the octal or
 * base-256 field, or the preceding PAX header's `size` record), zero blocks skipped. Global PAX
 * headers (`g`) are kept and apply under every later local one, as in tar-stream.
 */
export class PaxRecorder {
  /** PAX headers seen and not yet taken, oldest first. */
  readonly #queue: Map<string, Buffer>[] = [];
  #global = new Map<string, Buffer>();
  /** Bytes of the header block being gathered. */
  #header = Buffer.alloc(BLOCK);
  #headerFill = 0;
  /** Body bytes (with padding) still to pass before the next header. */
  #skip = 0;
  /** The PAX body being captured (for `x` and `g`), and where it is stored when complete. */
  #capture: { body: Buffer; fill: number; size: number; global: boolean } | undefined;
  /** The `size` record of the last local PAX header, which overrides the next header's size field. */
  #paxSize: number | undefined;

  /** Feeds the next bytes of the archive. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#capture !== undefined) {
        const n = Math.min(this.#capture.size - this.#capture.fill, chunk.byteLength - at);
        chunk.copy(this.#capture.body, this.#capture.fill, at, at + n);
        this.#capture.fill += n;
        at += n;
        this.#skip -= n;
        if (this.#capture.fill === this.#capture.size) this.#finishCapture();
        continue;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.byteLength - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#headerFill, chunk.byteLength - at);
      chunk.copy(this.#header, this.#headerFill, at, at + n);
      this.#headerFill += n;
      at += n;
      if (this.#headerFill === BLOCK) {
        this.#headerFill = 0;
        this.#onHeader(this.#header);
      }
    }
  }

  /** The records of the oldest PAX header not yet taken (globals merged under it), or undefined. */
  take(): ReadonlyMap<string, Buffer> | undefined {
    return this.#queue.shift();
  }

  #onHeader(header: Buffer): void {
    if (header.every((b) => b === 0)) return; // end-of-archive (or padding) block
    const type = String.fromCharCode(header[156] ?? 0);
    const size = type === "x" || type === "g" ? sizeField(header) : (this.#paxSize ?? sizeField(header));
    if (type !== "x" && type !== "g" && type !== "L" && type !== "K") this.#paxSize = undefined;
    // As tar-stream: a directory has no body whatever its size field says; every other type has one.
    this.#skip = type === "5" ? 0 : roundUp(size);
    if ((type === "x" || type === "g") && size > 0) this.#capture = { body: Buffer.alloc(size), fill: 0, size, global: type === "g" };
  }

  #finishCapture(): void {
    const capture = this.#capture;
    if (capture === undefined) return;
    this.#capture = undefined;
    const records = parsePaxRecords(capture.body);
    if (capture.global) {
      for (const [key, value] of records) this.#global.set(key, value);
      return;
    }
    const merged = new Map(this.#global);
    for (const [key, value] of records) merged.set(key, value);
    const size = merged.get("size");
    this.#paxSize = size === undefined ? undefined : Number(size.toString("latin1"));
    this.#queue.push(merged);
  }
}

const BLOCK = 512;

function roundUp(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** A ustar size field: octal text, or GNU base-256 when the high bit of its first byte is set. */
function sizeField(header: Buffer): number {
  const field = header.subarray(124, 136);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = 0;
    for (let i = 1; i < field.byteLength; i++) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  return text === "" ? 0 : parseInt(text, 8);
}

/**
 * The records of a PAX extended header body (`"<length> <key>=<value>\n"` each), values as raw
 * bytes. A malformed record ends the list (as tar-stream does).
 */
export function parsePaxRecords(body: Buffer): [string, Buffer][] {
  const records: [string, Buffer][] = [];
  let at = 0;
  while (at < body.byteLength) {
    const space = body.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(body.toString("latin1", at, space));
    if (!Number.isInteger(length) || length <= 0 || at + length > body.byteLength) break;
    const record = body.subarray(space + 1, at + length - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq === -1) break;
    records.push([record.toString("utf8", 0, eq), Buffer.from(record.subarray(eq + 1))]);
    at += length;
  }
  return records;
}
