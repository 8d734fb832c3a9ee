import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Digest } from "../../solver/llb/index.js";
import { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes } from "../../worker/oci/index.js";
import type { LayerSource } from "../../worker/snapshotter/types.js";
import { StoreLayers } from "./store-layers.js";

let dir: string;
let content: ContentStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-store-layers-"));
  content = await ContentStore.open(join(dir, "content"));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SNAPSHOT = "0123456789abcdef0123456789abcdef";
const diffId = `sha256:${"d".repeat(64)}` as Digest;

function source(snapshot: string): LayerSource {
  return { snapshot, blob: undefined, openTar: () => Readable.from([Buffer.from("fresh diff")]) };
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe("StoreLayers", () => {
  it("remembers uncompressed blobs per snapshot and ignores compressed ones", async () => {
    const layers = new StoreLayers(join(dir, "store-layers"), content);
    const stored = await content.writeBytes(Buffer.from("layer tar"));
    const gzip = { descriptor: { mediaType: MediaTypes.ociLayerGzip, digest: stored.digest, size: stored.size }, diffId };
    await layers.record(SNAPSHOT, gzip);
    expect(await layers.get(SNAPSHOT)).toBeUndefined();
    const plain = { descriptor: { mediaType: MediaTypes.ociLayer, digest: stored.digest, size: stored.size }, diffId };
    await layers.record(SNAPSHOT, plain);
    expect(await layers.get(SNAPSHOT)).toEqual(plain);
  });

  it("gives store images the blob, exports a tar read from it, and forgets a blob the content store lost", async () => {
    const layers = new StoreLayers(join(dir, "store-layers"), content);
    const stored = await content.writeBytes(Buffer.from("layer tar"));
    const plain = { descriptor: { mediaType: MediaTypes.ociLayer, digest: stored.digest, size: stored.size }, diffId };
    await layers.record(SNAPSHOT, plain);
    const other = "fedcba9876543210fedcba9876543210";
    const [forStore, untouched] = await layers.forStore([source(SNAPSHOT), source(other)]);
    expect(forStore?.blob).toEqual(plain);
    expect(untouched?.blob).toBeUndefined();
    const [forExport] = await layers.forExport([source(SNAPSHOT)]);
    expect(forExport?.blob).toBeUndefined();
    expect(await text(forExport!.openTar())).toBe("layer tar");
    await content.delete(stored.digest);
    const [gone] = await layers.forExport([source(SNAPSHOT)]);
    expect(await text(gone!.openTar())).toBe("fresh diff");
  });
});
