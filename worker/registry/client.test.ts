import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestHex, type Digest } from "../../solver/llb/index.js";
import { pushOciLayout, startRegistry, type RunningRegistry } from "../../test/harness/registry.js";
import { writeTestImage, type TestImage } from "../../test/harness/test-image.js";
import { ContentStore } from "../content/content-store.js";
import { MediaTypes } from "../oci/index.js";
import { RegistryClient } from "./client.js";
import { staticCredentials } from "./credentials.js";
import { RegistryError } from "./errors.js";
import { pullBlobs } from "./pull.js";
import { PlatformNotFoundError } from "./resolve.js";

const amd64 = { os: "linux", architecture: "amd64" };
const arm64 = { os: "linux", architecture: "arm64" };

describe("RegistryClient against docker-registry on loopback", () => {
  let registry: RunningRegistry;
  let dir: string;
  let single: TestImage;
  let multi: TestImage;
  let layered: TestImage;
  // No credentials at all: these tests are anonymous.
  const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });

  beforeAll(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), "kiln-registry-client-"));
    const layout = join(dir, "layout");
    single = await writeTestImage(layout, { ref: "single:v1" });
    multi = await writeTestImage(layout, { ref: "multi:v1", platforms: [amd64, arm64] });
    layered = await writeTestImage(layout, {
      ref: "layered:v1",
      layers: [[{ path: "a.txt", content: "a".repeat(100_000) }], [{ path: "b/b.txt", content: "b" }], [{ path: "c.txt", content: "c" }]],
    });
    await pushOciLayout(layout, "single:v1", registry.host);
    await pushOciLayout(layout, "multi:v1", registry.host);
    await pushOciLayout(layout, "layered:v1", registry.host);
    await pushOciLayout(layout, "multi:v1", registry.host, { target: "docker-multi:v1", format: "v2s2" });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("resolve() pulls a single-platform image anonymously over plain HTTP and pins it by manifest digest", async () => {
    const resolved = await client.resolve(`${registry.host}/single:v1`, amd64);
    const image = single.images[0]!;
    expect(resolved.manifestDigest).toBe(image.manifest.digest);
    expect(resolved.ref).toMatchObject({ domain: registry.host, path: "single", tag: "v1", digest: image.manifest.digest });
    expect(resolved.configDescriptor.digest).toBe(image.config.digest);
    expect(resolved.config.rootfs.diff_ids).toEqual(image.diffIds);
    expect(resolved.indexDigest).toBeUndefined();
    expect(resolved.manifestMediaType).toBe(MediaTypes.ociManifest);
  });

  it("resolve() selects the requested platform from an OCI index", async () => {
    const resolved = await client.resolve(`${registry.host}/multi:v1`, arm64);
    expect(resolved.manifestDigest).toBe(multi.images[1]!.manifest.digest);
    expect(resolved.indexDigest).toBe(multi.top.digest);
    expect(resolved.config.architecture).toBe("arm64");
  });

  it("resolve() normalises the requested platform (aarch64 is arm64)", async () => {
    const resolved = await client.resolve(`${registry.host}/multi:v1`, { os: "linux", architecture: "aarch64" });
    expect(resolved.manifestDigest).toBe(multi.images[1]!.manifest.digest);
  });

  it("resolve() selects a platform from a Docker manifest list with schema 2 manifests", async () => {
    const resolved = await client.resolve(`${registry.host}/docker-multi:v1`, amd64);
    expect(resolved.manifestMediaType).toBe(MediaTypes.dockerManifest);
    expect(resolved.indexMediaType).toBe(MediaTypes.dockerManifestList);
    expect(resolved.config.architecture).toBe("amd64");
    expect(resolved.manifest.layers[0]?.mediaType).toBe(MediaTypes.dockerLayerGzip);
  });

  it("resolve() names the platforms an index has when none matches", async () => {
    const error = await client.resolve(`${registry.host}/multi:v1`, { os: "linux", architecture: "s390x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlatformNotFoundError);
    expect((error as PlatformNotFoundError).code).toBe("KILN_IMAGE_PLATFORM_NOT_FOUND");
    expect((error as Error).message).toBe(`Cannot use image "${registry.host}/multi:v1" for platform "linux/s390x": it has "linux/amd64", "linux/arm64"`);
  });

  it("fetchManifest() by digest returns exactly the bytes with that digest", async () => {
    const fetched = await client.fetchManifest(`${registry.host}/multi@${multi.top.digest}`);
    expect(fetched.kind).toBe("index");
    expect(fetched.digest).toBe(multi.top.digest);
  });

  it("fetchManifest() of an unknown tag fails with the registry's diagnostics and is not retryable", async () => {
    const error = await client.fetchManifest(`${registry.host}/single:nope`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    const e = error as RegistryError;
    expect(e.code).toBe("KILN_REGISTRY_NOT_FOUND");
    expect(e.status).toBe(404);
    expect(e.retryable).toBe(false);
    expect(e.diagnostics.map((d) => d.code)).toContain("MANIFEST_UNKNOWN");
  });

  it("pullBlobs() downloads only missing layers, verified, reporting bytes per layer", async () => {
    const content = await ContentStore.open(join(dir, "content-pull"));
    const layers = layered.images[0]!.layers;
    await content.writeBytes(await readFile(join(dir, "layout", "blobs", "sha256", digestHex(layers[1]!.digest))));
    const progress = new Map<string, number>();
    const pulled = await pullBlobs(client, `${registry.host}/layered:v1`, layers, content, {
      concurrency: 2,
      onBytes: (d, n) => progress.set(d.digest, n),
    });
    expect(pulled.map((d) => d.digest)).toEqual([layers[0]!.digest, layers[2]!.digest]);
    for (const layer of layers) expect(await content.has(layer.digest)).toBe(true);
    expect(progress.get(layers[0]!.digest)).toBe(layers[0]!.size);
    expect(progress.has(layers[1]!.digest)).toBe(false);
    const tar = gunzipSync(await content.readBytes(layers[0]!.digest));
    expect(tar.includes(Buffer.from("a".repeat(1000)))).toBe(true);
  });

  it("pullBlob() refuses a blob whose bytes do not match its digest and stores nothing", async () => {
    // Corrupt the registry's stored copy of a layer; the registry serves it without checking.
    const layer = single.images[0]!.layers[0]!;
    const hex = digestHex(layer.digest);
    const data = join(registry.storage, "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data");
    await writeFile(data, Buffer.alloc(layer.size, 0x41));
    const content = await ContentStore.open(join(dir, "content-corrupt"));
    const error = await client.pullBlob(`${registry.host}/single:v1`, layer, content).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("KILN_CONTENT_INVALID");
    expect((error as Error).message).toContain(`expected digest "${layer.digest}"`);
    expect(await content.has(layer.digest)).toBe(false);
  });

  it("fetchBlob() of a blob the repository does not have is a not-found RegistryError", async () => {
    const missing = { mediaType: MediaTypes.ociLayerGzip, digest: `sha256:${"0".repeat(64)}` as Digest, size: 1 };
    const error = await client.fetchBlob(`${registry.host}/single:v1`, missing).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_NOT_FOUND");
    expect((error as RegistryError).diagnostics.map((d) => d.code)).toContain("BLOB_UNKNOWN");
  });

  it("baseUrl() uses plain HTTP only for loopback and insecure registries", () => {
    const insecure = new RegistryClient({ credentials: staticCredentials({}), insecure: ["registry.internal:5000"] });
    expect(insecure.baseUrl("127.0.0.1:5000")).toBe("http://127.0.0.1:5000/v2/");
    expect(insecure.baseUrl("localhost:5000")).toBe("http://localhost:5000/v2/");
    expect(insecure.baseUrl("registry.internal:5000")).toBe("http://registry.internal:5000/v2/");
    expect(insecure.baseUrl("registry.example:5000")).toBe("https://registry.example:5000/v2/");
    expect(insecure.baseUrl("docker.io")).toBe("https://registry-1.docker.io/v2/");
  });
});
