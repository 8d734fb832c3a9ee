/**
 * PAX extended header records with their values as raw bytes. tar-stream decodes PAX values as
 * UTF-8 text, which corrupts binary xattrs (`SCHILY.xattr.security.capability` holds a
 * little-endian struct); TarReader keeps each record's bytes so xattr values stay byte-exact.
 */

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
