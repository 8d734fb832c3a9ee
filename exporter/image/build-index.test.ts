import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sha256, type Digest, type ImageMetadata } from "../../solver/llb/index.js";
import { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes, type ImageIndex, type Manifest } from "../../worker/oci/index.js";
import type { LayerSource } from "../../worker/snapshotter/types.js";
import { fixtureLayer, fixtureTar } from "../test-layers.js";
import { annotationsFor, parseAnnotationOption } from "./annotations.js";
import { buildImage, type BuiltImage } from "./build-image.js";
import { artifactBlobs, artifactManifests, buildImageIndex } from "./build-index.js";
import { LayerVariants } from "./layer-variants.js";

const amd64: ImageMetadata = { platform: { os: "linux", architecture: "amd64" }, config: {}, history: [{ created_by: "COPY a /" }] };
const firstDiffId = (image: BuiltImage): Digest => image.spec.rootfs.diff_ids[0] as Digest;
const arm64: ImageMetadata = { ...amd64, platform: { os: "linux", architecture: "arm64" } };

describe("buildImageIndex() and force-compression", () => {
  let dir: string;
  let content: ContentStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-build-index-"));
    content = await ContentStore.open(join(dir, "content"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const layer = async (snapshot: string, text: string): Promise<ReturnType<typeof fixtureLayer>> => fixtureLayer(snapshot, await fixtureTar([{ kind: "file", path: "a", content: text }]));

  it("writes an OCI index with one entry per platform, with platform fields and descriptor annotations, and the index annotations", async () => {
    const one = await buildImage({ layers: [await layer("s1", "amd")], image: amd64, content, epoch: 0, descriptorAnnotations: { d: "1" } });
    const two = await buildImage({ layers: [await layer("s2", "arm")], image: arm64, content, epoch: 0, manifestAnnotations: { m: "2" } });
    const built = await buildImageIndex({ images: [{ platform: amd64.platform, image: one }, { platform: arm64.platform, image: two }], content, annotations: { i: "3" } });
    const index = await content.readJson<ImageIndex>(built.index.digest);
    expect(index).toEqual({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        { mediaType: MediaTypes.ociManifest, digest: one.manifest.digest, size: one.manifest.size, annotations: { d: "1" }, platform: { architecture: "amd64", os: "linux" } },
        { mediaType: MediaTypes.ociManifest, digest: two.manifest.digest, size: two.manifest.size, platform: { architecture: "arm64", os: "linux" } },
      ],
      annotations: { i: "3" },
    });
    expect((await content.readJson<Manifest>(two.manifest.digest)).annotations).toEqual({ m: "2" });
    expect(artifactManifests(built).map((d) => d.digest)).toEqual([one.manifest.digest, two.manifest.digest, built.index.digest]);
    expect(artifactBlobs(built)).toHaveLength(4);
  });

  it("writes a Docker manifest list when ociMediaTypes is false", async () => {
    const one = await buildImage({ layers: [await layer("s1", "amd")], image: amd64, content, epoch: 0, ociMediaTypes: false });
    const built = await buildImageIndex({ images: [{ platform: amd64.platform, image: one }], content, ociMediaTypes: false });
    expect(built.index.mediaType).toBe(MediaTypes.dockerManifestList);
    expect((await content.readJson<ImageIndex>(built.index.digest)).manifests[0]?.mediaType).toBe(MediaTypes.dockerManifest);
  });

  it("reuses a stored gzip layer as it is for zstd without force-compression, and converts it once with it", async () => {
    const first = await layer("s1", "content of a layer");
    const gz = await buildImage({ layers: [first], image: amd64, content, epoch: 0 });
    const stored = gz.layers[0]!;
    const withBlob: LayerSource = { snapshot: "s1", blob: { descriptor: stored, diffId: firstDiffId(gz) }, openTar: () => { throw new Error("the tar must not be opened"); } };
    const variants = new LayerVariants(join(dir, "variants"), content);

    const kept = await buildImage({ layers: [withBlob], image: amd64, content, epoch: 0, compression: "zstd", variants });
    expect(kept.layers[0]).toEqual(stored);

    const forced = await buildImage({ layers: [withBlob], image: amd64, content, epoch: 0, compression: "zstd", forceCompression: true, variants });
    const zstd = forced.layers[0]!;
    expect(zstd.mediaType).toBe(MediaTypes.ociLayerZstd);
    expect(forced.spec.rootfs.diff_ids).toEqual(gz.spec.rootfs.diff_ids);
    expect(await variants.get(firstDiffId(gz), "zstd")).toEqual({ mediaType: zstd.mediaType, digest: zstd.digest, size: zstd.size });

    // A second forced export finds the recorded variant: the gzip blob is not even read.
    await content.delete(stored.digest);
    const again = await buildImage({ layers: [withBlob], image: amd64, content, epoch: 0, compression: "zstd", forceCompression: true, variants });
    expect(again.layers[0]).toEqual(zstd);
    expect(again.manifest.digest).toBe(forced.manifest.digest);
  });

  it("records new layers per compression, and forgets a record whose blob left the store", async () => {
    const variants = new LayerVariants(join(dir, "variants"), content);
    const built = await buildImage({ layers: [await layer("s1", "x")], image: amd64, content, epoch: 0, compression: "uncompressed", variants });
    const diffId = firstDiffId(built);
    expect(built.layers[0]?.digest).toBe(diffId);
    expect(await variants.get(diffId, "uncompressed")).toMatchObject({ digest: diffId });
    expect(await variants.get(diffId, "gzip")).toBeUndefined();
    await content.delete(diffId);
    expect(await variants.get(diffId, "uncompressed")).toBeUndefined();
  });

  it("converts a zstd layer to gzip under force-compression with the same diff id", async () => {
    const zstd = await buildImage({ layers: [await layer("s1", "zz")], image: amd64, content, epoch: 0, compression: "zstd" });
    const blob = { descriptor: zstd.layers[0]!, diffId: firstDiffId(zstd) };
    const gz = await buildImage({ layers: [{ snapshot: "s1", blob, openTar: () => { throw new Error("not opened"); } }], image: amd64, content, epoch: 0, forceCompression: true });
    expect(gz.layers[0]?.mediaType).toBe(MediaTypes.ociLayerGzip);
    expect(sha256(gunzipSync(await content.readBytes(gz.layers[0]!.digest)))).toBe(blob.diffId);
  });
});

describe("annotation options", () => {
  it("parse as BuildKit's keys do: plain annotation is a manifest one, and platforms select manifests", () => {
    const parsed = [
      parseAnnotationOption("annotation.a", "1"),
      parseAnnotationOption("annotation-manifest[linux/arm64].b", "2"),
      parseAnnotationOption("annotation-index.c", "3"),
      parseAnnotationOption("annotation-manifest.a", "4"),
    ].flatMap((a) => (a === undefined ? [] : [a]));
    expect(parseAnnotationOption("name", "x")).toBeUndefined();
    expect(annotationsFor(parsed, "manifest", { os: "linux", architecture: "amd64" })).toEqual({ a: "4" });
    expect(annotationsFor(parsed, "manifest", { os: "linux", architecture: "arm64" })).toEqual({ a: "4", b: "2" });
    expect(annotationsFor(parsed, "index")).toEqual({ c: "3" });
    expect(annotationsFor(parsed, "index-descriptor")).toBeUndefined();
  });

  it("refuse an unknown type with a stable code", () => {
    expect(() => parseAnnotationOption("annotation-layer.k", "v")).toThrow(expect.objectContaining({ code: "KILN_EXPORT_INVALID_OPTION" }));
  });
});
