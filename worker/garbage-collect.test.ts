import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { ContentStore } from "./content/content-store.js";
import { LocalImages } from "./content/image-index.js";
import { collectWorkerGarbage } from "./garbage-collect.js";
import { MediaTypes } from "./oci/index.js";
import { SnapshotStore } from "./snapshotter/snapshot-store.js";
import type { SnapshotId } from "./snapshotter/types.js";

const HOUR = 3600_000;

describe("collectWorkerGarbage", () => {
  let root: string;
  let content: ContentStore;
  let images: LocalImages;
  let store: SnapshotStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "kiln-worker-gc-"));
    content = await ContentStore.open(join(root, "content"));
    images = new LocalImages(content.root);
    store = await SnapshotStore.open(join(root, "snapshots", "native"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const snapshot = async (created: number): Promise<SnapshotId> => {
    const id = store.newId();
    await mkdir(store.fsDir(id), { recursive: true });
    await writeFile(join(store.fsDir(id), "data"), "x".repeat(10_000));
    await store.write({ id, parent: null, kind: "committed", created });
    return id;
  };

  /** An image in the content store: a layer, a config and a manifest, named `name`. */
  const image = async (name: string, layerText: string): Promise<string[]> => {
    const layer = await content.writeBytes(Buffer.from(layerText));
    const config = await content.writeBytes(Buffer.from(JSON.stringify({ rootfs: { type: "layers", diff_ids: [layer.digest] } })));
    const manifest = await content.writeBytes(
      Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
        layers: [{ mediaType: MediaTypes.ociLayer, digest: layer.digest, size: layer.size }],
      })),
    );
    await images.set(name, { mediaType: MediaTypes.ociManifest, digest: manifest.digest, size: manifest.size });
    return [layer.digest, config.digest, manifest.digest];
  };

  test("an image's blobs survive; once the image is removed they are collected, and old temp files too", async () => {
    const kept = await image("kept:1", "layer one");
    const removed = await image("removed:1", "layer two");
    const stray = await content.writeBytes(Buffer.from("nobody refers to me"));
    await images.remove("removed:1");
    const temp = join(content.root, "ingest", "12345-deadbeef");
    await writeFile(temp, "half a blob");
    await utimes(temp, new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
    const now = Date.now() + 1000;

    const young = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], now });
    expect(young.blobs).toEqual([]);

    const report = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], blobGraceMs: 0, now });
    expect(report.blobs.map((b) => b.digest).sort()).toEqual([...removed, stray.digest].sort());
    for (const digest of kept) expect(await content.has(digest as never)).toBe(true);
    for (const digest of removed) expect(await content.has(digest as never)).toBe(false);
    expect(await readdir(join(content.root, "ingest"))).toEqual([]);
  });

  test("a layer blob a remaining snapshot records survives; a swept snapshot's does not", async () => {
    const now = Date.now();
    const keptBlob = await content.writeBytes(Buffer.from("kept layer"));
    const goneBlob = await content.writeBytes(Buffer.from("gone layer"));
    const kept = await snapshot(now - 2 * HOUR);
    const gone = await snapshot(now - 2 * HOUR);
    await store.setBlob(kept, { descriptor: { mediaType: MediaTypes.ociLayer, digest: keptBlob.digest, size: keptBlob.size }, diffId: keptBlob.digest });
    await store.setBlob(gone, { descriptor: { mediaType: MediaTypes.ociLayer, digest: goneBlob.digest, size: goneBlob.size }, diffId: goneBlob.digest });
    const report = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [kept], blobGraceMs: 0, now: now + 1000 });
    expect(report.snapshots.map((s) => s.id)).toEqual([gone]);
    expect(report.snapshotBytes).toBeGreaterThanOrEqual(10_000);
    expect(report.blobs.map((b) => b.digest)).toEqual([goneBlob.digest]);
  });

  test("an http download snapshot its record keeps is collected once the record is forgotten", async () => {
    const now = Date.now();
    const download = await snapshot(now - 2 * HOUR);
    const other = await snapshot(now - 2 * HOUR);
    await mkdir(join(root, "executor", "http"), { recursive: true });
    await writeFile(join(root, "executor", "http", "0123.json"), JSON.stringify({ downloads: [{ digest: `sha256:${"a".repeat(64)}`, filename: "f", snapshot: download }] }));

    const kept = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], now });
    expect(kept.snapshots.map((s) => s.id)).toEqual([other]);
    expect(await store.tryRead(download)).toBeDefined();

    const dry = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], now, dryRun: true, forgetFeaturesBefore: now + 1000 });
    expect(dry.snapshots).toEqual([]);

    const forgotten = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], now, forgetFeaturesBefore: now + 1000 });
    expect(forgotten.snapshots.map((s) => s.id)).toEqual([download]);
    expect(await readdir(join(root, "executor", "http"))).toEqual([]);
  });

  test("a swept snapshot's content index is removed with it; a kept one's stays", async () => {
    const now = Date.now();
    const swept = await snapshot(now - 2 * HOUR);
    const kept = await snapshot(now - 2 * HOUR);
    const indexDir = join(root, "executor", "content-index");
    await mkdir(indexDir, { recursive: true });
    await writeFile(join(indexDir, `${swept}.txt`), "kiln-content-index 1\n");
    await writeFile(join(indexDir, `${kept}.txt`), "kiln-content-index 1\n");
    const report = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [kept], now });
    expect(report.snapshots.map((s) => s.id)).toEqual([swept]);
    expect(await readdir(indexDir)).toEqual([`${kept}.txt`]);
  });

  test("the snapshots unpacked for a local image's layers are kept", async () => {
    const now = Date.now();
    const [layer] = await image("imported:1", "imported layer");
    const unpacked = await snapshot(now - 2 * HOUR);
    await store.write({ ...(await store.read(unpacked)), chainId: layer as never });
    await store.recordChain(layer as never, unpacked);
    const report = await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], now });
    expect(report.snapshots).toEqual([]);
    await images.remove("imported:1");
    expect((await collectWorkerGarbage({ root, content, images }, { cacheRoots: [], now })).snapshots.map((s) => s.id)).toEqual([unpacked]);
  });
});
