import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, test } from "vitest";
import { diffSnapshot } from "../differ/diff.js";
import { encodeTarHeader, endOfArchive, padding } from "../differ/tar-entry.js";
import { getXattr, setXattr } from "../syscalls.js";
import { applyLayer } from "./apply-layer.js";
import { withMountedSnapshot } from "./mount.js";
import { createNativeSnapshotter } from "./native.js";
import { createOverlaySnapshotter } from "./overlay.js";
import { parsePaxRecords } from "./pax-records.js";
import { tempDir } from "./testing/layer-tar.js";

/**
 * A file capability as `setcap cap_net_raw,cap_setfcap+ep` writes it (VFS_CAP_REVISION_2): magic
 * and effective flag, then permitted/inheritable low and high words, little-endian. Bit 31
 * (CAP_SETFCAP) makes byte 0x80 appear, which is not valid UTF-8 on its own.
 */
const CAPABILITY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/** An arbitrary binary user xattr: invalid UTF-8, a NUL, a newline and an "=". */
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a, 0x3d, 0xc3]);

/** A one-file layer whose PAX header carries the xattrs as raw bytes (the differ's encoder). */
function layerWithXattrs(content: string, xattrs: readonly (readonly [string, Buffer])[]): Buffer {
  const body = Buffer.from(content);
  const entry = { name: "bin/ping", type: "file" as const, mode: 0o755, uid: 0, gid: 0, size: body.byteLength, mtime: 1_600_000_000, xattrs };
  return Buffer.concat([encodeTarHeader(entry), body, padding(body.byteLength), endOfArchive()]);
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("binary xattrs", () => {
  test("applyLayer writes a binary security.capability and user xattr byte for byte", async () => {
    const dir = await tempDir();
    const tar = layerWithXattrs("ping", [["security.capability", CAPABILITY], ["user.binary", BINARY]]);
    // Small chunks: the PAX header arrives split across reads.
    const chunks = Array.from({ length: Math.ceil(tar.byteLength / 7) }, (_, i) => tar.subarray(i * 7, i * 7 + 7));
    await applyLayer(Readable.from(chunks), dir, { layerName: "caps", whiteouts: "native" });
    expect(getXattr(join(dir, "bin/ping"), "security.capability")).toEqual(CAPABILITY);
    expect(getXattr(join(dir, "bin/ping"), "user.binary")).toEqual(BINARY);
  });

  test.each(["overlay", "native"] as const)("a binary xattr survives snapshot → diff → apply byte-exact (%s)", async (kind) => {
    const root = await tempDir();
    const snapshotter = kind === "overlay" ? await createOverlaySnapshotter(join(root, "s"), { userxattr: false }) : await createNativeSnapshotter(join(root, "s"));
    const active = await snapshotter.prepare(null);
    await withMountedSnapshot(active.mount, async (dir) => {
      await writeFile(join(dir, "ping"), "ping");
      setXattr(join(dir, "ping"), "security.capability", CAPABILITY);
      setXattr(join(dir, "ping"), "user.binary", BINARY);
    });
    const id = await snapshotter.commit(active);
    const layer = await bytesOf(diffSnapshot(snapshotter, id));
    // The differ writes the raw bytes into the PAX header.
    const paxBody = layer.subarray(512, 512 + parseInt(layer.toString("latin1", 124, 135), 8));
    expect(new Map(parsePaxRecords(paxBody)).get("SCHILY.xattr.security.capability")).toEqual(CAPABILITY);

    const target = await tempDir();
    await applyLayer(Readable.from([layer]), target, { layerName: "round-trip", whiteouts: "native" });
    expect(getXattr(join(target, "ping"), "security.capability")).toEqual(CAPABILITY);
    expect(getXattr(join(target, "ping"), "user.binary")).toEqual(BINARY);
  });
});
