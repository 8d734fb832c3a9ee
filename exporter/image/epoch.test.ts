import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentStore } from "../../worker/content/content-store.js";
import { fixtureLayer } from "../test-layers.js";
import { buildImage } from "./build-image.js";
import { clampTarTimes, imageTime, parseSourceDateEpoch } from "./epoch.js";

const execFileAsync = promisify(execFile);
const LONG = `${"deep/".repeat(30)}file`;

/** A tar whose entries have the given mtime (seconds), with a long name, links and an xattr. */
async function tarAt(seconds: number): Promise<Buffer> {
  const pack = tar.pack();
  const mtime = new Date(seconds * 1000);
  pack.entry({ name: "old", mtime: new Date(1000 * 1000), mode: 0o644 }, "old\n");
  pack.entry({ name: "new", mtime, mode: 0o640, uid: 7, gid: 8, pax: { "SCHILY.xattr.user.k": "v" } }, "new\n");
  pack.entry({ name: LONG, mtime, mode: 0o600 }, "long\n");
  pack.entry({ name: "sym", type: "symlink", linkname: "new", mtime });
  pack.entry({ name: "hard", type: "link", linkname: "new", mtime });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("clampTarTimes()", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-epoch-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("clamps newer times to the epoch and keeps everything else, as GNU tar reads it", async () => {
    const out = await collect(clampTarTimes(Readable.from([await tarAt(2_000_000_000)], { objectMode: false }), 1_500_000_000));
    const file = join(dir, "out.tar");
    await writeFile(file, out);
    const { stdout } = await execFileAsync("tar", ["--full-time", "--numeric-owner", "-tvf", file]);
    const lines = stdout.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^-rw-r--r-- 0\/0 +4 1970-01-01 00:16:40 old$/);
    expect(lines[1]).toMatch(/^-rw-r----- 7\/8 +4 2017-07-14 02:40:00 new$/);
    expect(lines[2]).toContain(`2017-07-14 02:40:00 ${LONG}`);
    expect(lines[3]).toMatch(/2017-07-14 02:40:00 sym -> new$/);
    expect(lines[4]).toMatch(/2017-07-14 02:40:00 hard link to new$/);
    const xattrs = await execFileAsync("tar", ["--xattrs", "--xattrs-include=*", "-tvvf", file]);
    expect(xattrs.stdout).toContain("user.k");
  });

  it("makes layers that differ only in newer times identical", async () => {
    const a = await collect(clampTarTimes(Readable.from([await tarAt(2_000_000_000)], { objectMode: false }), 1_500_000_000));
    const b = await collect(clampTarTimes(Readable.from([await tarAt(1_900_000_000)], { objectMode: false }), 1_500_000_000));
    expect(b.equals(a)).toBe(true);
  });
});

describe("buildImage() with rewriteTimestamp", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-epoch-build-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives two builds whose files have different times the same digests on two content stores", async () => {
    const image = { platform: { os: "linux", architecture: "amd64" }, config: {}, history: [{ created_by: "RUN make" }] };
    const build = async (store: string, seconds: number, rewriteTimestamp: boolean): Promise<string> => {
      const content = await ContentStore.open(join(dir, store));
      const layer = fixtureLayer("s", await tarAt(seconds));
      return (await buildImage({ layers: [layer], image, content, epoch: 1_500_000_000, rewriteTimestamp })).manifest.digest;
    };
    expect(await build("b", 1_900_000_000, true)).toBe(await build("a", 2_000_000_000, true));
    expect(await build("d", 1_900_000_000, false)).not.toBe(await build("c", 2_000_000_000, false));
  });

  it("refuses rewriteTimestamp without an epoch", async () => {
    const content = await ContentStore.open(join(dir, "x"));
    const image = { platform: { os: "linux", architecture: "amd64" }, config: {}, history: [] };
    await expect(buildImage({ layers: [], image, content, rewriteTimestamp: true })).rejects.toMatchObject({ code: "KILN_EXPORT_INVALID_OPTION" });
  });
});

describe("parseSourceDateEpoch() and imageTime()", () => {
  it("reads whole seconds and treats empty as unset", () => {
    expect(parseSourceDateEpoch("1700000000")).toBe(1_700_000_000);
    expect(parseSourceDateEpoch("")).toBeUndefined();
    expect(parseSourceDateEpoch(undefined)).toBeUndefined();
  });

  it("refuses a value that is not whole seconds", () => {
    expect(() => parseSourceDateEpoch("12.5")).toThrow(/SOURCE_DATE_EPOCH "12.5"/);
  });

  it("writes whole seconds without a fraction, like Go", () => {
    expect(imageTime(0)).toBe("1970-01-01T00:00:00Z");
    expect(imageTime(undefined, 1_500)).toBe("1970-01-01T00:00:01.500Z");
  });
});
