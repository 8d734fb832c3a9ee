import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ImageMetadata, ImageSpec } from "../solver/llb/index.js";
import { ContentStore } from "../worker/content/content-store.js";
import { dockerManifestEntry, writeDockerArchive, type DockerArchiveManifestEntry } from "./docker-archive.js";
import { buildImage, type BuiltImage } from "./image/build-image.js";
import { fixtureLayer, fixtureTar } from "./test-layers.js";

const execFileAsync = promisify(execFile);

const metadata: ImageMetadata = {
  platform: { os: "linux", architecture: "arm64" },
  config: { Cmd: ["/app"], Labels: { "org.example": "yes" } },
  history: [{ created_by: "COPY app /app" }],
};

describe("writeDockerArchive()", () => {
  let dir: string;
  let content: ContentStore;
  let image: BuiltImage;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-docker-archive-"));
    content = await ContentStore.open(join(dir, "content"));
    const layer = await fixtureTar([{ kind: "file", path: "app", content: "binary", mode: 0o755 }]);
    image = await buildImage({ layers: [fixtureLayer("s", layer)], image: metadata, content, ociMediaTypes: false, epoch: 0 });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes an archive that skopeo reads as a docker archive, with its tags and config", async () => {
    const archive = join(dir, "image.tar");
    await writeDockerArchive(image, content, { dest: archive, names: ["example.com/app:1.0", "app"] });
    const { stdout } = await execFileAsync("skopeo", ["inspect", "--config", `docker-archive:${archive}:example.com/app:1.0`]);
    const config = JSON.parse(stdout) as ImageSpec;
    expect(config.architecture).toBe("arm64");
    expect(config.config?.Labels).toEqual({ "org.example": "yes" });
    expect(config.rootfs.diff_ids).toEqual(image.spec.rootfs.diff_ids);
    const inspected = JSON.parse((await execFileAsync("skopeo", ["inspect", `docker-archive:${archive}:app:latest`])).stdout) as { Layers: string[] };
    expect(inspected.Layers).toHaveLength(1);
  });

  it("holds Docker's manifest.json beside an OCI layout that skopeo also reads (for an image with OCI media types)", async () => {
    // skopeo's oci: transport only looks up OCI manifest types by name, so the OCI view needs them.
    const layer = await fixtureTar([{ kind: "file", path: "app", content: "binary", mode: 0o755 }]);
    image = await buildImage({ layers: [fixtureLayer("s", layer)], image: metadata, content, epoch: 0 });
    const archive = join(dir, "image.tar");
    await writeDockerArchive(image, content, { dest: archive, names: ["busybox:latest"] });
    const extracted = join(dir, "x");
    await mkdir(extracted);
    await execFileAsync("tar", ["-xf", archive, "-C", extracted]);
    const manifest = JSON.parse(await readFile(join(extracted, "manifest.json"), "utf8")) as DockerArchiveManifestEntry[];
    expect(manifest).toEqual([
      {
        Config: `blobs/sha256/${image.config.digest.slice(7)}`,
        RepoTags: ["busybox:latest"],
        Layers: image.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
      },
    ]);
    const { stdout } = await execFileAsync("skopeo", ["inspect", `oci:${extracted}:latest`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(image.manifest.digest);
    const viaDocker = await execFileAsync("skopeo", ["inspect", "--config", `docker-archive:${archive}`]);
    expect((JSON.parse(viaDocker.stdout) as ImageSpec).rootfs.diff_ids).toEqual(image.spec.rootfs.diff_ids);
  });

  it("leaves digest-only names out of RepoTags", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    expect(dockerManifestEntry(image, [`example.com/app@${digest}`, "example.com/app:v2"]).RepoTags).toEqual(["example.com/app:v2"]);
  });
});
