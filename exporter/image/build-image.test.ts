import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sha256, type ImageMetadata, type ImageSpec } from "../../solver/llb/index.js";
import type { ProgressEvent } from "../../solver/progress.js";
import { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes, type Manifest } from "../../worker/oci/index.js";
import type { LayerBlob, LayerSource } from "../../worker/snapshotter/types.js";
import { fixtureLayer, fixtureTar } from "../test-layers.js";
import { buildImage } from "./build-image.js";

const execFileAsync = promisify(execFile);

const metadata: ImageMetadata = {
  platform: { os: "linux", architecture: "amd64" },
  config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"], Labels: { b: "2", a: "1" } },
  history: [{ created_by: "base" }, { created_by: "ENV X=1", empty_layer: true }, { created_by: "RUN make" }],
};

describe("buildImage()", () => {
  let dir: string;
  let content: ContentStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-build-image-"));
    content = await ContentStore.open(join(dir, "content"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const twoLayers = async (): Promise<LayerSource[]> => [
    fixtureLayer("s1", await fixtureTar([{ kind: "dir", path: "etc" }, { kind: "file", path: "etc/hello", content: "hi\n" }])),
    fixtureLayer("s2", await fixtureTar([{ kind: "file", path: "app", content: "binary", mode: 0o755 }])),
  ];

  it("stores layers, config and manifest whose digests and diff ids match their bytes", async () => {
    const layers = await twoLayers();
    const image = await buildImage({ layers, image: metadata, content, epoch: 1_700_000_000 });
    const manifest = await content.readJson<Manifest>(image.manifest.digest);
    expect(image.manifest.mediaType).toBe(MediaTypes.ociManifest);
    expect(manifest.config).toEqual(image.config);
    expect(manifest.layers).toEqual(image.layers);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaTypes.ociLayerGzip, MediaTypes.ociLayerGzip]);
    const spec = await content.readJson<ImageSpec>(image.config.digest);
    expect(spec).toEqual(image.spec);
    for (const [i, layer] of manifest.layers.entries()) {
      const blob = await content.readBytes(layer.digest);
      expect(sha256(blob)).toBe(layer.digest);
      expect(blob.byteLength).toBe(layer.size);
      expect(sha256(gunzipSync(blob))).toBe(spec.rootfs.diff_ids[i]);
    }
    expect(spec).toMatchObject({ architecture: "amd64", os: "linux", created: "2023-11-14T22:13:20Z" });
    expect(Object.keys(spec.config?.Labels ?? {})).toEqual(["a", "b"]);
    expect(spec.history?.map((h) => h.created)).toEqual(["2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z"]);
  });

  it("gives the same manifest digest for equal layers and the same epoch, in another content store", async () => {
    const first = await buildImage({ layers: await twoLayers(), image: metadata, content, epoch: 1_600_000_000 });
    const otherContent = await ContentStore.open(join(dir, "other"));
    const second = await buildImage({ layers: await twoLayers(), image: metadata, content: otherContent, epoch: 1_600_000_000 });
    expect(second.manifest.digest).toBe(first.manifest.digest);
    expect(second.config.digest).toBe(first.config.digest);
    const later = await buildImage({ layers: await twoLayers(), image: metadata, content, epoch: 1_600_000_001 });
    expect(later.manifest.digest).not.toBe(first.manifest.digest);
  });

  it("reuses a layer that already has a blob without opening its tar, and reports new blobs", async () => {
    const first = await buildImage({ layers: await twoLayers(), image: metadata, content, epoch: 0 });
    const base = first.layers[0]!;
    const reused: LayerSource = {
      snapshot: "s1",
      blob: { descriptor: base, diffId: first.spec.rootfs.diff_ids[0] as LayerBlob["diffId"] },
      openTar: () => {
        throw new Error("openTar must not be called for a layer with a blob");
      },
    };
    const fresh = (await twoLayers())[1]!;
    const remembered: [string, LayerBlob][] = [];
    const second = await buildImage({
      layers: [reused, fresh],
      image: metadata,
      content,
      epoch: 0,
      onLayerBlob: async (snapshot, blob) => {
        remembered.push([snapshot, blob]);
      },
    });
    expect(second.manifest.digest).toBe(first.manifest.digest);
    expect(remembered).toEqual([["s2", { descriptor: first.layers[1], diffId: first.spec.rootfs.diff_ids[1] }]]);
  });

  it("drops a layer whose tar has no entries and marks its history line empty", async () => {
    const layers = [(await twoLayers())[0]!, fixtureLayer("s-empty", await fixtureTar([]))];
    const blobs: string[] = [];
    const image = await buildImage({
      layers,
      image: metadata,
      content,
      onLayerBlob: async (snapshot) => {
        blobs.push(snapshot);
      },
    });
    expect(image.layers).toHaveLength(1);
    expect(image.spec.rootfs.diff_ids).toHaveLength(1);
    expect(image.spec.history?.map((h) => [h.created_by, h.empty_layer === true])).toEqual([
      ["base", false],
      ["ENV X=1", true],
      ["RUN make", true],
    ]);
    expect(blobs).toEqual(["s1"]);
  });

  it("writes Docker schema 2 media types when ociMediaTypes is false, also for reused OCI blobs", async () => {
    const oci = await buildImage({ layers: await twoLayers(), image: metadata, content, epoch: 0 });
    const reused: LayerSource = { snapshot: "s1", blob: { descriptor: oci.layers[0]!, diffId: oci.spec.rootfs.diff_ids[0] as LayerBlob["diffId"] }, openTar: () => { throw new Error("unused"); } };
    const docker = await buildImage({ layers: [reused, (await twoLayers())[1]!], image: metadata, content, ociMediaTypes: false, epoch: 0 });
    const manifest = await content.readJson<Manifest>(docker.manifest.digest);
    expect(manifest.mediaType).toBe(MediaTypes.dockerManifest);
    expect(manifest.config.mediaType).toBe(MediaTypes.dockerConfig);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaTypes.dockerLayerGzip, MediaTypes.dockerLayerGzip]);
    expect(manifest.layers.map((l) => l.digest)).toEqual(oci.layers.map((l) => l.digest));
  });

  it("stores uncompressed layers whose digest is their diff id", async () => {
    const image = await buildImage({ layers: await twoLayers(), image: metadata, content, compression: "uncompressed" });
    expect(image.layers.map((l) => l.mediaType)).toEqual([MediaTypes.ociLayer, MediaTypes.ociLayer]);
    expect(image.layers.map((l) => l.digest)).toEqual(image.spec.rootfs.diff_ids);
  });

  it("compresses zstd layers with the zstd program, which the zstd tool reads back", async () => {
    const layers = await twoLayers();
    const image = await buildImage({ layers, image: metadata, content, compression: "zstd", compressionLevel: 5 });
    expect(image.layers[0]!.mediaType).toBe(MediaTypes.ociLayerZstd);
    const { stdout } = await execFileAsync("zstd", ["-dc", content.path(image.layers[0]!.digest)], { encoding: "buffer" });
    expect(sha256(stdout)).toBe(image.spec.rootfs.diff_ids[0]);
  });

  it("fails with the layer's stream error and leaves no partial blob behind", async () => {
    const broken: LayerSource = {
      snapshot: "broken",
      blob: undefined,
      openTar: () =>
        Readable.from(
          (async function* () {
            yield Buffer.alloc(2 * 1024 * 1024, 1);
            throw new Error("disk went away");
          })(),
          { objectMode: false },
        ),
    };
    await expect(buildImage({ layers: [broken], image: metadata, content })).rejects.toThrow("disk went away");
    expect(await readdir(join(content.root, "ingest"))).toEqual([]);
  });

  it("stops when the signal aborts", async () => {
    const controller = new AbortController();
    const endless: LayerSource = {
      snapshot: "endless",
      blob: undefined,
      openTar: () =>
        Readable.from(
          (async function* () {
            for (let i = 0; ; i++) {
              if (i === 4) controller.abort();
              yield Buffer.alloc(256 * 1024, i);
            }
          })(),
          { objectMode: false },
        ),
    };
    await expect(buildImage({ layers: [endless], image: metadata, content, signal: controller.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(await readdir(join(content.root, "ingest"))).toEqual([]);
  });

  it("refuses a gzip level outside 0-9 with a stable code", async () => {
    await expect(buildImage({ layers: [], image: metadata, content, compressionLevel: 12 })).rejects.toMatchObject({ code: "KILN_EXPORT_INVALID_OPTION" });
  });

  it("reports the export as progress vertices with byte counts", async () => {
    const events: ProgressEvent[] = [];
    await buildImage({ layers: await twoLayers(), image: metadata, content, onEvent: (e) => events.push(e) });
    const names = events.filter((e) => e.type === "vertex.completed").map((e) => (e.type === "vertex.completed" ? e.name : ""));
    expect(names).toEqual(["exporting layers", "exporting manifest and config"]);
    expect(events.some((e) => e.type === "vertex.bytes")).toBe(true);
  });
});
