import { readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { sha256, type Digest } from "../../solver/llb/index.js";
import { ContentStore } from "../content/content-store.js";
import { MediaTypes, type Descriptor } from "../oci/index.js";
import { withMountedSnapshot } from "./mount.js";
import { createNativeSnapshotter } from "./native.js";
import { createOverlaySnapshotter } from "./overlay.js";
import { describeTree, type FixtureEntry, layerTar, tempDir } from "./testing/layer-tar.js";
import type { Snapshotter } from "./types.js";
import { chainIdOf, unpackImage } from "./unpack.js";

interface TestImage {
  readonly layers: Descriptor[];
  readonly diffIds: Digest[];
}

async function image(content: ContentStore, layers: readonly { entries: FixtureEntry[]; compression: "gzip" | "none" | "zstd" }[]): Promise<TestImage> {
  const result: TestImage = { layers: [], diffIds: [] };
  for (const layer of layers) {
    const tar = await layerTar(layer.entries);
    const blob = layer.compression === "gzip" ? gzipSync(tar) : tar;
    const stored = await content.writeBytes(blob);
    const mediaType = layer.compression === "gzip" ? MediaTypes.ociLayerGzip : layer.compression === "zstd" ? MediaTypes.ociLayerZstd : MediaTypes.ociLayer;
    result.layers.push({ mediaType, digest: stored.digest, size: stored.size });
    result.diffIds.push(sha256(tar));
  }
  return result;
}

const THREE_LAYERS = [
  { entries: [{ name: "etc/", type: "directory" as const }, { name: "etc/os-release", content: "kiln" }, { name: "tmp/", type: "directory" as const, mode: 0o1777 }], compression: "gzip" as const },
  { entries: [{ name: "etc/", type: "directory" as const }, { name: "etc/hostname", content: "box" }], compression: "none" as const },
  { entries: [{ name: "etc/", type: "directory" as const }, { name: "etc/.wh.hostname", content: "" }, { name: "app", content: "app" }], compression: "gzip" as const },
];

async function setup(kind: "overlay" | "native"): Promise<{ root: string; snapshotter: Snapshotter; content: ContentStore }> {
  const root = await tempDir();
  const snapshotter = kind === "overlay" ? await createOverlaySnapshotter(join(root, "snapshots"), { userxattr: false }) : await createNativeSnapshotter(join(root, "snapshots"));
  return { root, snapshotter, content: await ContentStore.open(join(root, "content")) };
}

async function snapshotCount(root: string): Promise<number> {
  return (await readdir(join(root, "snapshots", "meta"))).length;
}

describe.each(["overlay", "native"] as const)("unpackImage() with %s snapshots", (kind) => {
  test("unpacks gzip and uncompressed layers into committed snapshots with blobs and chain ids", async () => {
    const { root, snapshotter, content } = await setup(kind);
    const img = await image(content, THREE_LAYERS);
    const seen: number[] = [];
    const top = await unpackImage({ snapshotter, content, ...img, onLayer: (i) => seen.push(i) });
    expect(seen).toEqual([0, 1, 2]);
    const chain = await snapshotter.chain(top as string);
    expect(chain.map((s) => s.blob?.diffId)).toEqual(img.diffIds);
    expect(chain.map((s) => s.blob?.descriptor.digest)).toEqual(img.layers.map((l) => l.digest));
    const c0 = chainIdOf(null, img.diffIds[0] as Digest);
    expect(c0).toBe(img.diffIds[0]);
    const c1 = sha256(`${c0} ${img.diffIds[1]}`);
    expect(chain.map((s) => s.chainId)).toEqual([c0, c1, sha256(`${c1} ${img.diffIds[2]}`)]);
    const tree = await withMountedSnapshot(await snapshotter.view(top), (dir) => describeTree(dir));
    expect(tree).toEqual(expect.arrayContaining(["app file:a172cedcae47 644 0:0", "etc/os-release file:cdfe9ad58b46 644 0:0", "tmp dir 1777 0:0"]));
    expect(tree.some((l) => l.startsWith("etc/hostname"))).toBe(false);
    expect(await snapshotCount(root)).toBe(3);
  });

  test("reuses already unpacked chains, also for another image sharing the lower layers", async () => {
    const { root, snapshotter, content } = await setup(kind);
    const img = await image(content, THREE_LAYERS);
    const top = await unpackImage({ snapshotter, content, ...img });
    expect(await unpackImage({ snapshotter, content, ...img })).toBe(top);
    expect(await snapshotCount(root)).toBe(3);
    const other = await image(content, [...THREE_LAYERS.slice(0, 2), { entries: [{ name: "other", content: "o" }], compression: "gzip" }]);
    const otherTop = await unpackImage({ snapshotter, content, ...other });
    expect(await snapshotCount(root)).toBe(4);
    expect((await snapshotter.info(otherTop as string)).parent).toBe((await snapshotter.info(top as string)).parent);
    expect(await unpackImage({ snapshotter, content, layers: [], diffIds: [] })).toBeNull();
  });

  test("refuses a layer whose diff id does not match the config and leaves no snapshot behind", async () => {
    const { root, snapshotter, content } = await setup(kind);
    const img = await image(content, THREE_LAYERS.slice(0, 1));
    const wrong = sha256("not the layer");
    await expect(unpackImage({ snapshotter, content, layers: img.layers, diffIds: [wrong] })).rejects.toMatchObject({ code: "KILN_LAYER_DIFFID_MISMATCH" });
    expect(await snapshotCount(root)).toBe(0);
    expect(await readdir(join(root, "snapshots", "snapshots"))).toEqual([]);
  });

  test("refuses a malicious layer and aborts its snapshot", async () => {
    const { root, snapshotter, content } = await setup(kind);
    const img = await image(content, [{ entries: [{ name: "../../escape", content: "x" }], compression: "gzip" }]);
    await expect(unpackImage({ snapshotter, content, ...img })).rejects.toMatchObject({ code: "KILN_LAYER_UNSAFE_ENTRY" });
    expect(await snapshotCount(root)).toBe(0);
  });

  test("writes through a lower layer's absolute symlink where the merged tree has it (var/run -> /run)", async () => {
    const { snapshotter, content } = await setup(kind);
    const img = await image(content, [
      { entries: [{ name: "run/", type: "directory" }, { name: "var/", type: "directory" }, { name: "var/run", type: "symlink", linkname: "/run" }], compression: "gzip" },
      { entries: [{ name: "var/run/app.pid", content: "42" }], compression: "gzip" },
    ]);
    const top = await unpackImage({ snapshotter, content, ...img });
    await withMountedSnapshot(await snapshotter.view(top), async (dir) => {
      expect(await readFile(join(dir, "run/app.pid"), "utf8")).toBe("42");
      // Seen from the host, the link would lead to the host's /run: check it is still the link.
      expect(await readlink(join(dir, "var/run"))).toBe("/run");
    });
  });

  test("two concurrent unpacks of one image both give a complete snapshot chain", async () => {
    const { root, content } = await setup(kind);
    const open = () => (kind === "overlay" ? createOverlaySnapshotter(join(root, "snapshots"), { userxattr: false }) : createNativeSnapshotter(join(root, "snapshots")));
    const [a, b] = [await open(), await open()];
    const img = await image(content, THREE_LAYERS);
    const [topA, topB] = await Promise.all([unpackImage({ snapshotter: a, content, ...img }), unpackImage({ snapshotter: b, content, ...img })]);
    for (const top of [topA, topB]) {
      await withMountedSnapshot(await a.view(top), async (dir) => {
        expect(await readFile(join(dir, "app"), "utf8")).toBe("app");
        expect(await readFile(join(dir, "etc/os-release"), "utf8")).toBe("kiln");
      });
    }
    const again = await unpackImage({ snapshotter: a, content, ...img });
    expect([topA, topB]).toContain(again);
    for (const name of await readdir(join(root, "snapshots", "meta"))) {
      expect(name.endsWith(".json")).toBe(true);
      expect((await a.info(name.slice(0, -5))).kind).toBe("committed");
    }
  });
});

test("unpackImage() says zstd layers are not supported on this Node", async () => {
  const { snapshotter, content } = await setup("overlay");
  const img = await image(content, [{ entries: [{ name: "a", content: "a" }], compression: "zstd" }]);
  const hasZstd = typeof (await import("node:zlib") as Record<string, unknown>)["createZstdDecompress"] === "function";
  if (hasZstd) return;
  await expect(unpackImage({ snapshotter, content, ...img })).rejects.toMatchObject({ code: "KILN_LAYER_UNSUPPORTED", message: expect.stringContaining("zstd") });
});
