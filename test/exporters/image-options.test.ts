import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

interface RawManifest {
  readonly mediaType: string;
  readonly config: { readonly mediaType: string; readonly digest: string };
  readonly layers: readonly { readonly mediaType: string; readonly digest: string }[];
  readonly annotations?: Record<string, string>;
}

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("skopeo", args, { maxBuffer: 64 << 20 });
  return stdout;
}

/** The layer media types of an image's manifest, as skopeo reads it. */
async function layerTypes(ref: string): Promise<string[]> {
  const manifest = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", ref)) as RawManifest;
  return manifest.layers.map((l) => l.mediaType);
}

const DOCKERFILE = `FROM ${registry}/busybox:latest\nRUN echo compressed > /msg.txt\nCMD ["cat", "/msg.txt"]\n`;
const OCI = "application/vnd.oci.image.layer.v1.tar";

// BuildKit's image exporter options (compression, oci-mediatypes, annotations, rewrite-timestamp),
// read back by skopeo, umoci and the registry rather than by kiln's own code.
describe("image output options through bin/kiln", () => {
  let scratch: Scratch;
  let context: string;
  beforeAll(async () => {
    scratch = await createScratch();
    context = await scratch.context("ctx", { Dockerfile: DOCKERFILE });
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  const build = async (...args: string[]): Promise<string> => {
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", ...args, context]);
    expect(run.code, run.stderr).toBe(0);
    return run.stderr;
  };

  test("compression=zstd writes a zstd new layer and keeps the stored gzip base; force-compression=true makes both zstd, which skopeo decompresses", async () => {
    const kept = join(scratch.dir, "zstd-kept");
    const forced = join(scratch.dir, "zstd-forced");
    await build("--output", `type=oci,dest=${kept},tar=false,compression=zstd`, "--output", `type=oci,dest=${forced},tar=false,compression=zstd,force-compression=true`);
    expect(await layerTypes(`oci:${kept}:latest`)).toEqual([`${OCI}+gzip`, `${OCI}+zstd`]);
    expect(await layerTypes(`oci:${forced}:latest`)).toEqual([`${OCI}+zstd`, `${OCI}+zstd`]);
    // Debian's umoci (0.4.7) predates zstd; skopeo reads the zstd layers, recompressing them as gzip for it.
    const converted = join(scratch.dir, "zstd-converted");
    await skopeo("copy", "--quiet", "--dest-compress", "--dest-compress-format", "gzip", `oci:${forced}:latest`, `oci:${converted}:latest`);
    expect(await layerTypes(`oci:${converted}:latest`)).toEqual([`${OCI}+gzip`, `${OCI}+gzip`]);
    const bundle = join(scratch.dir, "zstd-bundle");
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${converted}:latest`, bundle]);
    expect(await readFile(join(bundle, "rootfs/msg.txt"), "utf8")).toBe("compressed\n");
    expect(await readFile(join(bundle, "rootfs/bin/busybox"))).not.toHaveLength(0);
  });

  test("compression=uncompressed,force-compression=true writes plain tar layers that skopeo inspects and umoci unpacks", async () => {
    const dest = join(scratch.dir, "plain");
    await build("--output", `type=oci,dest=${dest},tar=false,compression=uncompressed,force-compression=true`);
    expect(await layerTypes(`oci:${dest}:latest`)).toEqual([OCI, OCI]);
    const bundle = join(scratch.dir, "plain-bundle");
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${dest}:latest`, bundle]);
    expect(await readFile(join(bundle, "rootfs/msg.txt"), "utf8")).toBe("compressed\n");
  });

  test("a pushed zstd image is read back by skopeo inspect and copied by skopeo copy", async () => {
    const name = `${registry}/options/zstd:v1`;
    await build("--output", `type=image,name=${name},push=true,compression=zstd,compression-level=19,force-compression=true`);
    const manifest = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${name}`)) as RawManifest;
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([`${OCI}+zstd`, `${OCI}+zstd`]);
    const copy = join(scratch.dir, "zstd-copy");
    await skopeo("copy", "--quiet", "--src-tls-verify=false", "--dest-compress", "--dest-compress-format", "gzip", `docker://${name}`, `oci:${copy}:v1`);
    const bundle = join(scratch.dir, "zstd-copy-bundle");
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${copy}:v1`, bundle]);
    expect(await readFile(join(bundle, "rootfs/msg.txt"), "utf8")).toBe("compressed\n");
  });

  test("oci-mediatypes=false pushes a Docker schema 2 manifest with Docker config and layer media types", async () => {
    const name = `${registry}/options/docker-types:v1`;
    await build("--output", `type=image,name=${name},push=true,oci-mediatypes=false`);
    const manifest = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${name}`)) as RawManifest;
    expect(manifest.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(manifest.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
    // The new layer's stored blob is zstd (an earlier test made it so); Docker schema 2 has no zstd, so it is converted.
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(["application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip"]);
    const inspected = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${name}`)) as { Architecture: string };
    expect(inspected.Architecture).toBe("amd64");
  });

  test("annotation options land on the manifest and on the layout's index.json entry; index annotations need several platforms", async () => {
    const dest = join(scratch.dir, "annotated");
    await build("--output", `type=oci,dest=${dest},tar=false,annotation.org.opencontainers.image.title=kiln,annotation-manifest-descriptor.com.example.d=yes`);
    const index = JSON.parse(await readFile(join(dest, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(index.manifests[0]?.annotations).toMatchObject({ "com.example.d": "yes", "org.opencontainers.image.ref.name": "latest" });
    const manifest = JSON.parse(await skopeo("inspect", "--raw", `oci:${dest}:latest`)) as RawManifest;
    expect(manifest.annotations).toEqual({ "org.opencontainers.image.title": "kiln" });

    const refused = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=oci,dest=${join(scratch.dir, "no")},annotation-index.k=v`, context]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`Cannot use "annotation-index.k": index annotations are not supported for a single-platform export`);
  });

  test("unpack=true is accepted with a warning that it has no effect", async () => {
    const stderr = await build("--output", `type=image,name=kiln.test/unpacked:v1,unpack=true`);
    expect(stderr).toContain(`Output option "unpack" has no effect in kiln`);
  });
});

// Reproducibility: two state roots, two contexts written at different times, the same
// SOURCE_DATE_EPOCH and rewrite-timestamp=true: the same manifest and config digests.
describe("SOURCE_DATE_EPOCH with rewrite-timestamp=true", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("two builds on two state roots give identical manifest and config digests", async () => {
    const dockerfile = `FROM ${registry}/busybox:latest\nCOPY app.txt /app/\nRUN echo made > /app/made.txt && mkdir /app/dir\n`;
    const digests: { manifest: unknown; config: unknown }[] = [];
    for (const name of ["one", "two"]) {
      const context = await scratch.context(name, { Dockerfile: dockerfile, "app.txt": "same content\n" });
      const metadataFile = join(scratch.dir, `${name}.json`);
      const run = await runKiln(join(scratch.dir, `root-${name}`), [
        "build", "--progress", "plain", "--metadata-file", metadataFile,
        "--output", `type=oci,dest=${join(scratch.dir, `${name}.tar`)},rewrite-timestamp=true`, context,
      ], { env: { SOURCE_DATE_EPOCH: "1700000000" } });
      expect(run.code, run.stderr).toBe(0);
      const metadata = JSON.parse(await readFile(metadataFile, "utf8")) as Record<string, unknown>;
      digests.push({ manifest: metadata["containerimage.digest"], config: metadata["containerimage.config.digest"] });
      // The RUN writes its files at a different second in each build; the layer is the same only because of the clamp.
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
    expect(digests[0]?.manifest).toMatch(/^sha256:/);
    expect(digests[1]).toEqual(digests[0]);
    const config = JSON.parse(await skopeo("inspect", "--config", `oci-archive:${join(scratch.dir, "one.tar")}`)) as { created: string };
    expect(config.created).toBe("2023-11-14T22:13:20Z");
  });

  test("rewrite-timestamp=true without SOURCE_DATE_EPOCH is refused with the reason", async () => {
    const context = await scratch.context("none", { Dockerfile: "FROM scratch\nCOPY Dockerfile /\n" });
    const run = await runKiln(join(scratch.dir, "root-none"), ["build", "--progress", "plain", "--output", `type=oci,dest=${join(scratch.dir, "none.tar")},rewrite-timestamp=true`, context], {
      env: { SOURCE_DATE_EPOCH: "" },
    });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("rewrite-timestamp=true: it clamps file times to SOURCE_DATE_EPOCH, which is not set");
  });
});
