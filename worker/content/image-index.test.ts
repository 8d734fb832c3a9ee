import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { Digest } from "../../solver/llb/index.js";
import { MediaTypes, type Descriptor } from "../oci/index.js";
import { LocalImages } from "./image-index.js";

const descriptor = (fill: string): Descriptor => ({ mediaType: MediaTypes.ociManifest, digest: `sha256:${fill.repeat(64)}` as Digest, size: 100 });

describe("LocalImages.set", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "kiln-images-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("leaves index.json untouched when the name already points at the same descriptor", async () => {
    const images = new LocalImages(root);
    await images.set("docker.io/library/t:1", descriptor("a"));
    const before = await stat(join(root, "index.json"));
    await images.set("docker.io/library/t:1", descriptor("a"));
    const after = await stat(join(root, "index.json"));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  test("rewrites index.json when the name moves to another descriptor", async () => {
    const images = new LocalImages(root);
    await images.set("docker.io/library/t:1", descriptor("a"));
    const before = await stat(join(root, "index.json"));
    await images.set("docker.io/library/t:1", descriptor("b"));
    expect((await stat(join(root, "index.json"))).ino).not.toBe(before.ino);
    expect((await images.get("docker.io/library/t:1"))?.digest).toBe(descriptor("b").digest);
    expect(await images.list()).toHaveLength(1);
  });
});
