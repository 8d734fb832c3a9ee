import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { describe, expect, test } from "vitest";
import { applyLayer } from "../snapshotter/apply-layer.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createNativeSnapshotter } from "../snapshotter/native.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import { describeTree, layerTar, tempDir } from "../snapshotter/testing/layer-tar.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { setXattr } from "../syscalls.js";
import { diffSnapshot } from "./diff.js";
import { layerSources } from "./layer-sources.js";

type Kind = "overlay" | "native";

async function open(kind: Kind, root: string): Promise<Snapshotter> {
  return kind === "overlay" ? createOverlaySnapshotter(root, { userxattr: false }) : createNativeSnapshotter(root);
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Entry names with a type letter, in tar order. */
async function listing(bytes: Buffer): Promise<string[]> {
  const extract = tarStream.extract();
  const names: string[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      names.push(`${h.type === "link" ? `${h.name} => ${h.linkname}` : h.name} ${h.type}`);
      for await (const _ of entry);
    }
  })();
  Readable.from([bytes]).pipe(extract);
  await done;
  return names;
}

/** A committed base made from a layer tar, as unpack would. */
async function base(snapshotter: Snapshotter): Promise<string> {
  const active = await snapshotter.prepare(null);
  const tar = await layerTar([
    { name: "etc/", type: "directory" },
    { name: "etc/passwd", content: "root:x:0:0\n" },
    { name: "doomed", content: "bye" },
    { name: "replaced/", type: "directory" },
    { name: "replaced/old-a", content: "a" },
    { name: "replaced/old-b", content: "b" },
    { name: "bin/", type: "directory" },
    { name: "bin/sh", type: "symlink", linkname: "busybox" },
  ]);
  await applyLayer(Readable.from([tar]), active.upperdir, { layerName: "base", whiteouts: snapshotter.kind });
  return snapshotter.commit(active);
}

/** A child of `parentId` changed through its mount: a deletion, a replaced directory, hardlinks, xattrs, owners. */
async function child(snapshotter: Snapshotter, parentId: string): Promise<string> {
  const active = await snapshotter.prepare(parentId);
  await withMountedSnapshot(active.mount, async (dir) => {
    await rm(join(dir, "doomed"));
    await rm(join(dir, "replaced"), { recursive: true });
    await mkdir(join(dir, "replaced"));
    await writeFile(join(dir, "replaced/new"), "new");
    await writeFile(join(dir, "etc/data"), "shared");
    await link(join(dir, "etc/data"), join(dir, "etc/data-link"));
    setXattr(join(dir, "etc/data"), "user.kiln", Buffer.from("v"));
    await mkdir(join(dir, "home/user"), { recursive: true });
    const { lchown } = await import("node:fs/promises");
    await lchown(join(dir, "home/user"), 1000, 1000);
  });
  return snapshotter.commit(active);
}

describe.each<Kind>(["overlay", "native"])("diffSnapshot() on %s snapshots", (kind) => {
  test("emits whiteouts, opaque markers or deletions, hardlinks and xattrs, and the same bytes every time", async () => {
    const snapshotter = await open(kind, await tempDir());
    const baseId = await base(snapshotter);
    const childId = await child(snapshotter, baseId);
    const bytes = await bytesOf(diffSnapshot(snapshotter, childId));
    expect(await bytesOf(diffSnapshot(snapshotter, childId))).toEqual(bytes);
    const names = await listing(bytes);
    expect(names).toContain(".wh.doomed file");
    expect(names).toContain("etc/data file");
    expect(names).toContain("etc/data-link => etc/data link");
    expect(names).toContain("home/user/ directory");
    expect(names).toContain("replaced/new file");
    if (kind === "overlay") {
      expect(names).toContain("replaced/.wh..wh..opq file");
      expect(names).not.toContain("etc/passwd file");
    } else {
      expect(names).toEqual(expect.arrayContaining(["replaced/.wh.old-a file", "replaced/.wh.old-b file"]));
      expect(names).not.toContain("etc/passwd file");
      expect(names).not.toContain("bin/sh symlink");
    }
    const sorted = names.filter((n) => !n.includes("=>")).map((n) => n.split(" ")[0] as string);
    expect(sorted.indexOf("etc/")).toBeLessThan(sorted.indexOf("etc/data"));
  });

  test("applying the diff onto the same base reproduces the tree and diffs to the same bytes", async () => {
    const snapshotter = await open(kind, await tempDir());
    const baseId = await base(snapshotter);
    const childId = await child(snapshotter, baseId);
    const bytes = await bytesOf(diffSnapshot(snapshotter, childId));

    const active = await snapshotter.prepare(baseId);
    await applyLayer(Readable.from([bytes]), active.upperdir, { layerName: "diff", whiteouts: kind });
    const copyId = await snapshotter.commit(active);

    const original = await withMountedSnapshot(await snapshotter.view(childId), (dir) => describeTree(dir, { mtimes: true }));
    const copy = await withMountedSnapshot(await snapshotter.view(copyId), (dir) => describeTree(dir, { mtimes: true }));
    expect(copy).toEqual(original);
    expect(original.find((l) => l.startsWith("etc/data "))).toMatch(/^etc\/data file:a4d26868017c 644 0:0 mtime=\d+ user\.kiln=v$/);
    expect(original).toContain("home/user dir 755 1000:1000");
    expect(await bytesOf(diffSnapshot(snapshotter, copyId))).toEqual(bytes);
  });

  test("packs small files into large chunks and streams a large file between them, in tar order", async () => {
    const snapshotter = await open(kind, await tempDir());
    const active = await snapshotter.prepare(null);
    const files = new Map<string, Buffer>();
    // 600 files of 3,001 bytes (1.8 MB with headers and padding: the packing crosses blocks), a
    // 2.5 MiB file in their middle, an empty file.
    for (let i = 0; i < 600; i++) files.set(`small/f${String(i).padStart(3, "0")}`, Buffer.alloc(3001, i % 251));
    files.set("small/f300-large", Buffer.alloc(2.5 * 1024 * 1024 + 7, 7));
    files.set("small/zz-empty", Buffer.alloc(0));
    await mkdir(join(active.upperdir, "small"));
    for (const [name, content] of files) await writeFile(join(active.upperdir, name), content);
    const id = await snapshotter.commit(active);

    const chunks: Buffer[] = [];
    for await (const chunk of diffSnapshot(snapshotter, id)) chunks.push(chunk as Buffer);
    expect(chunks.every((c) => c.byteLength <= 1 << 20)).toBe(true);
    expect(chunks.length).toBeLessThan(10);
    const bytes = Buffer.concat(chunks);

    const extract = tarStream.extract();
    const seen: [string, Buffer][] = [];
    const done = (async () => {
      for await (const entry of extract) {
        const parts: Buffer[] = [];
        for await (const part of entry) parts.push(part as Buffer);
        seen.push([entry.header.name, Buffer.concat(parts)]);
      }
    })();
    Readable.from(chunks).pipe(extract);
    await done;
    expect(seen.map(([name]) => name)).toEqual(["small/", ...[...files.keys()].sort()]);
    for (const [name, content] of seen.slice(1)) expect(content.equals(files.get(name) as Buffer), name).toBe(true);
    // Buffer.equals: a deep toEqual of megabytes is slow.
    expect((await bytesOf(diffSnapshot(snapshotter, id))).equals(bytes)).toBe(true);
  });

  test("layerSources() lists the chain base first with blobs and fresh tars", async () => {
    const snapshotter = await open(kind, await tempDir());
    const baseId = await base(snapshotter);
    const childId = await child(snapshotter, baseId);
    const blob = { descriptor: { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${"1".repeat(64)}`, size: 1 }, diffId: `sha256:${"2".repeat(64)}` } as const;
    await snapshotter.setBlob(baseId, blob as never);
    const sources = await layerSources(snapshotter, childId);
    expect(sources.map((s) => s.snapshot)).toEqual([baseId, childId]);
    expect(sources[0]?.blob).toEqual(blob);
    expect(sources[1]?.blob).toBeUndefined();
    const first = await bytesOf(sources[1]!.openTar());
    expect(await bytesOf(sources[1]!.openTar())).toEqual(first);
    expect(await listing(await bytesOf(sources[0]!.openTar()))).toContain("etc/passwd file");
    expect(await layerSources(snapshotter, null)).toEqual([]);
  });
});

test("an overlay diff applied natively gives the same tree as the overlay view", async () => {
  const overlay = await open("overlay", await tempDir());
  const native = await open("native", await tempDir());
  const overlayChild = await child(overlay, await base(overlay));
  const nativeBase = await base(native);
  const active = await native.prepare(nativeBase);
  await applyLayer(diffSnapshot(overlay, overlayChild), active.upperdir, { layerName: "diff", whiteouts: "native" });
  const nativeChild = await native.commit(active);
  const expected = await withMountedSnapshot(await overlay.view(overlayChild), (dir) => describeTree(dir, { mtimes: true }));
  expect(await withMountedSnapshot(await native.view(nativeChild), (dir) => describeTree(dir, { mtimes: true }))).toEqual(expected);
  expect(await readFile(join(active.upperdir, "replaced/new"), "utf8")).toBe("new");
});
