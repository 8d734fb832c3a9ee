import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentStore } from "../worker/content/content-store.js";
import { LocalImages } from "../worker/content/image-index.js";
import { buildImage, type BuiltImage } from "./image/build-image.js";
import { storeImage } from "./image-store.js";
import { fixtureLayer, fixtureTar } from "./test-layers.js";

describe("storeImage()", () => {
  let dir: string;
  let content: ContentStore;
  let images: LocalImages;
  let image: BuiltImage;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-image-store-"));
    content = await ContentStore.open(join(dir, "content"));
    images = new LocalImages(content.root);
    const layer = fixtureLayer("s", await fixtureTar([{ kind: "file", path: "f", content: "x" }]));
    image = await buildImage({ layers: [layer], image: { platform: { os: "linux", architecture: "amd64" }, config: {}, history: [] }, content, epoch: 0 });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("sets every name, normalised, to the image's manifest", async () => {
    await storeImage(image, images, ["app", "docker.io/library/app:latest", "127.0.0.1:5000/team/app:v1"]);
    const listed = await images.list();
    expect(listed.map((i) => i.name).sort()).toEqual(["127.0.0.1:5000/team/app:v1", "docker.io/library/app:latest"]);
    for (const entry of listed) expect(entry.descriptor).toMatchObject({ digest: image.manifest.digest, mediaType: image.manifest.mediaType, size: image.manifest.size });
  });

  it("sets no name when one of them is not a valid reference", async () => {
    await expect(storeImage(image, images, ["good", "Bad Name"])).rejects.toMatchObject({ code: "KILN_INVALID_REFERENCE" });
    expect(await images.list()).toEqual([]);
  });
});
