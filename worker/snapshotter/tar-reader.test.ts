import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, symlink, writeFile, link } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { describe, expect, test } from "vitest";
import { layerTar, tempDir } from "./testing/layer-tar.js";
import { TarFormatError, TarReader, type TarBodySink } from "./tar-reader.js";

/** What both readers must agree on for one entry. */
interface Seen {
  name: string;
  type: string | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
  body: string;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function withTarStream(bytes: Buffer): Promise<Seen[]> {
  const seen: Seen[] = [];
  const extract = tarStream.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const h = entry.header;
      seen.push({
        name: h.name, type: h.type ?? null, mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0,
        size: h.type === "directory" ? 0 : (h.size ?? 0), mtime: (h.mtime?.getTime() ?? 0) / 1000, linkname: h.linkname ?? null,
        devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0, pax: (h.pax as Record<string, string> | null | undefined) ?? null, body: sha(Buffer.concat(chunks)),
      });
    }
  })();
  Readable.from([bytes]).pipe(extract);
  await done;
  return seen;
}

function withTarReader(bytes: Buffer, chunkSize: number, wholeBodyLimit: number): Seen[] {
  const seen: Seen[] = [];
  const reader = new TarReader((h, body): TarBodySink | undefined => {
    const entry: Seen = {
      name: h.name, type: h.type ?? null, mode: h.mode, uid: h.uid, gid: h.gid, size: h.size, mtime: h.mtime, linkname: h.linkname ?? null,
      devmajor: h.devmajor, devminor: h.devminor, pax: h.pax === undefined ? null : Object.fromEntries([...h.pax].map(([k, v]) => [k, v.toString("utf8")])), body: "",
    };
    seen.push(entry);
    if (body !== undefined) {
      entry.body = sha(body);
      return undefined;
    }
    const chunks: Buffer[] = [];
    return { write: (b) => chunks.push(Buffer.from(b)), end: () => void (entry.body = sha(Buffer.concat(chunks))) };
  }, wholeBodyLimit);
  for (let at = 0; at < bytes.byteLength; at += chunkSize) reader.push(bytes.subarray(at, at + chunkSize));
  reader.end();
  return seen;
}

/** A tree with long names, long link targets, a hardlink, a symlink, an empty file and a 3000-byte one. */
async function fixtureTree(): Promise<string> {
  const base = await tempDir();
  const tree = join(base, "tree");
  const long = `${"d".repeat(90)}/${"e".repeat(90)}`;
  await mkdir(join(tree, long), { recursive: true });
  await writeFile(join(tree, long, `${"f".repeat(120)}.txt`), "long name\n");
  await writeFile(join(tree, "empty"), "");
  await writeFile(join(tree, "big"), Buffer.alloc(3000, 7));
  await link(join(tree, "big"), join(tree, "big-link"));
  await symlink(`../${"t".repeat(150)}`, join(tree, "long-symlink"));
  await writeFile(join(tree, "naïve ünïcode"), "u\n");
  return tree;
}

function gnuTar(tree: string, ...options: string[]): Buffer {
  return execFileSync("tar", ["-c", "-C", tree, "--sort=name", "--owner=0", "--group=0", "--mtime=@1600000000", ...options, "."]);
}

describe("TarReader", () => {
  test("reads every header, name and body as tar-stream does, whatever the chunking and format", async () => {
    const tree = await fixtureTree();
    const fixtures: [string, Buffer][] = [
      ["GNU long names", gnuTar(tree, "--format=gnu")],
      ["PAX paths and link paths", gnuTar(tree, "--format=posix")],
      ["a PAX global header", gnuTar(tree, "--format=posix", "--pax-option=comment=from-the-global-header,delete=atime,delete=ctime")],
      ["ustar prefixes, xattrs, devices", await layerTar([
        { name: "dir/", type: "directory", mode: 0o2755, uid: 5, gid: 6, mtime: 123 },
        { name: `${"p".repeat(120)}/file`, content: "prefixed", xattrs: { "user.k": "v" } },
        { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3 },
        { name: "fifo", type: "fifo", mode: 0o600 },
        { name: "sub/.wh..wh..opq", content: "" },
      ])],
    ];
    for (const [what, bytes] of fixtures) {
      const expected = await withTarStream(bytes);
      expect(expected.length, what).toBeGreaterThan(3);
      for (const chunkSize of [1, 7, 512, 4096, bytes.byteLength]) {
        for (const wholeBodyLimit of [0, 100, 1 << 20]) {
          expect(withTarReader(bytes, chunkSize, wholeBodyLimit), `${what}, chunks of ${chunkSize}, whole up to ${wholeBodyLimit}`).toEqual(expected);
        }
      }
    }
  });

  test("keeps a global header's records under the next local PAX header, not alone", () => {
    const pax = (records: Record<string, string>, flag: string): Buffer => {
      const body = Buffer.concat(Object.entries(records).map(([k, v]) => {
        const rest = ` ${k}=${v}\n`;
        let length = rest.length + 1;
        while (`${length}${rest}`.length !== length) length++;
        return Buffer.from(`${length}${rest}`);
      }));
      return Buffer.concat([header("pax", flag, body.byteLength), body, Buffer.alloc((512 - (body.byteLength % 512)) % 512)]);
    };
    const bytes = Buffer.concat([
      pax({ comment: "global", "SCHILY.xattr.user.g": "1" }, "g"),
      header("plain", "0", 0),
      pax({ path: "renamed" }, "x"),
      header("short", "0", 0),
      Buffer.alloc(1024),
    ]);
    const seen = withTarReader(bytes, 512, 1 << 20);
    expect(seen.map((s) => [s.name, s.pax])).toEqual([
      ["plain", null],
      ["renamed", { comment: "global", "SCHILY.xattr.user.g": "1", path: "renamed" }],
    ]);
  });

  test("refuses a corrupt header and an archive cut inside a body", () => {
    const bad = header("x", "0", 10);
    bad[0] = 0x41;
    expect(() => new TarReader(() => undefined, 100).push(bad)).toThrow(TarFormatError);
    const cut = new TarReader(() => undefined, 100);
    cut.push(Buffer.concat([header("file", "0", 10), Buffer.from("12345")]));
    expect(() => cut.end()).toThrow(TarFormatError);
  });

  test("reads a real GNU tar of a file and its body byte for byte", async () => {
    const tree = await fixtureTree();
    const seen = withTarReader(gnuTar(tree, "--format=gnu"), 300, 10);
    const big = seen.find((s) => s.name === "./big");
    expect(big?.body).toBe(sha(await readFile(join(tree, "big"))));
    expect(seen.find((s) => s.name === "./big-link")?.type).toBe("link");
  });
});

/** A ustar header with a valid checksum. */
function header(name: string, typeflag: string, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, "utf8");
  block.write("0000644\0", 100, "latin1");
  block.write("0000000\0", 108, "latin1");
  block.write("0000000\0", 116, "latin1");
  block.write(`${size.toString(8).padStart(11, "0")}\0`, 124, "latin1");
  block.write("00000000000\0", 136, "latin1");
  block.write(typeflag, 156, "latin1");
  block.write("ustar\0" + "00", 257, "latin1");
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return block;
}
