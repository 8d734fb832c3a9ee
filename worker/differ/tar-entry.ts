/**
 * Deterministic tar headers for layer diffs. The same entry always encodes to the same bytes:
 * ustar headers with only permission bits in `mode`, numeric owners (no uname/gname), whole-second
 * mtimes, and a PAX extended header (before the entry) only when something does not fit ustar:
 * a long or non-ASCII path or link target, a large id, size or time, or xattrs (as
 * `SCHILY.xattr.NAME`, values as raw bytes, names sorted). The PAX header's own ustar header is
 * fixed (name "PaxHeader", mode 0644, owner 0:0, mtime 0).
 */

export type TarEntryType = "file" | "link" | "symlink" | "char" | "block" | "directory" | "fifo";

export interface TarEntry {
  /** Root-relative path without a leading "./" or trailing "/" (a directory gets its "/" here). */
  readonly name: string;
  readonly type: TarEntryType;
  /** Permission bits (07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Body bytes, for "file" only. */
  readonly size: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly xattrs?: readonly (readonly [string, Buffer])[];
}

const BLOCK = 512;
const TYPEFLAGS: Record<TarEntryType, string> = { file: "0", link: "1", symlink: "2", char: "3", block: "4", directory: "5", fifo: "6" };
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** The header bytes of `entry` (PAX extended header first when needed), a multiple of 512 bytes. */
export function encodeTarHeader(entry: TarEntry): Buffer {
  const name = entry.type === "directory" ? `${entry.name}/` : entry.name;
  const linkname = entry.linkname ?? "";
  const records: [string, Buffer][] = [];
  if (!fitsUstar(name)) records.push(["path", Buffer.from(name, "utf8")]);
  if (!fitsUstar(linkname)) records.push(["linkpath", Buffer.from(linkname, "utf8")]);
  if (entry.uid > MAX_OCTAL_7) records.push(["uid", Buffer.from(String(entry.uid))]);
  if (entry.gid > MAX_OCTAL_7) records.push(["gid", Buffer.from(String(entry.gid))]);
  if (entry.size > MAX_OCTAL_11) records.push(["size", Buffer.from(String(entry.size))]);
  if (entry.mtime < 0 || entry.mtime > MAX_OCTAL_11) records.push(["mtime", Buffer.from(String(entry.mtime))]);
  if (entry.xattrs !== undefined && entry.xattrs.length > 0) {
    const xattrs = [...entry.xattrs].sort(([a], [b]) => compareBytes(a, b));
    for (const [key, value] of xattrs) records.push([`SCHILY.xattr.${key}`, value]);
  }

  const header = ustarHeader({
    name: truncate(name, 100),
    mode: entry.mode & 0o7777,
    uid: Math.min(entry.uid, MAX_OCTAL_7),
    gid: Math.min(entry.gid, MAX_OCTAL_7),
    size: entry.type === "file" ? Math.min(entry.size, MAX_OCTAL_11) : 0,
    mtime: Math.max(0, Math.min(entry.mtime, MAX_OCTAL_11)),
    typeflag: TYPEFLAGS[entry.type],
    linkname: truncate(linkname, 100),
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
  });
  if (records.length === 0) return header;
  const pax = Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  const paxHeader = ustarHeader({ name: "PaxHeader", mode: 0o644, uid: 0, gid: 0, size: pax.byteLength, mtime: 0, typeflag: "x", linkname: "", devmajor: 0, devminor: 0 });
  return Buffer.concat([paxHeader, pax, padding(pax.byteLength), header]);
}

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

interface UstarFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function ustarHeader(f: UstarFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(f.name, 0, 100, "latin1");
  writeOctal(block, 100, 8, f.mode);
  writeOctal(block, 108, 8, f.uid);
  writeOctal(block, 116, 8, f.gid);
  writeOctal(block, 124, 12, f.size);
  writeOctal(block, 136, 12, f.mtime);
  block.write("        ", 148, 8, "latin1");
  block.write(f.typeflag, 156, 1, "latin1");
  block.write(f.linkname, 157, 100, "latin1");
  block.write("ustar\u000000", 257, 8, "latin1");
  writeOctal(block, 329, 8, f.devmajor);
  writeOctal(block, 337, 8, f.devminor);
  let sum = 0;
  // An indexed loop: a Buffer's iterator costs more than the rest of the header.
  for (let i = 0; i < BLOCK; i++) sum += block[i] as number;
  block.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, 8, "latin1");
  return block;
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, "0")}\u0000`, offset, width, "latin1");
}

/** A PAX record: "<length> <key>=<value>\n", where length counts the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), value, Buffer.from("\n")]);
  let length = body.byteLength + 1;
  while (String(length).length + body.byteLength > length) length++;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

function fitsUstar(value: string): boolean {
  return value.length <= 100 && /^[\x01-\x7f]*$/.test(value);
}

/** The first `bytes` UTF-8 bytes of `value`, one latin1 character per byte (for a ustar field). */
function truncate(value: string, bytes: number): string {
  if (value.length <= bytes && fitsUstar(value)) return value;
  return Buffer.from(value, "utf8").subarray(0, bytes).toString("latin1");
}

/** Orders strings by their UTF-8 bytes (what "sorted" means for file names on disk). */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
