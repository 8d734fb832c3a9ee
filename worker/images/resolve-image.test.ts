import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestHex } from "../../solver/llb/index.js";
import { pushOciLayout, startRegistry, type RunningRegistry } from "../../test/harness/registry.js";
import { writeTestImage, type TestImage } from "../../test/harness/test-image.js";
import { ContentStore } from "../content/content-store.js";
import { LocalImages } from "../content/image-index.js";
import { RegistryClient } from "../registry/client.js";
import { staticCredentials } from "../registry/credentials.js";
import { PlatformNotFoundError } from "../registry/resolve.js";
import { createImageResolver } from "./resolve-image.js";

const amd64 = { os: "linux", architecture: "amd64" };
const arm64 = { os: "linux", architecture: "arm64" };

describe("createImageResolver()", () => {
  let registry: RunningRegistry;
  let dir: string;
  let layout: string;
  let multi: TestImage;
  const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });

  beforeAll(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), "kiln-resolve-image-"));
    layout = join(dir, "layout");
    multi = await writeTestImage(layout, { ref: "multi:v1", platforms: [amd64, arm64] });
    await pushOciLayout(layout, "multi:v1", registry.host);
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function fresh(name: string): Promise<{ content: ContentStore; images: LocalImages }> {
    const root = join(dir, name);
    const content = await ContentStore.open(root);
    return { content, images: new LocalImages(root) };
  }

  it("resolves through the registry, stores index, manifest and config, and pins the platform manifest digest", async () => {
    const { content, images } = await fresh("from-registry");
    const resolve = createImageResolver({ content, images, registry: client });
    const image = await resolve(`${registry.host}/multi:v1`, { platform: arm64 });
    const arm = multi.images[1]!;
    expect(image).toMatchObject({ ref: `${registry.host}/multi:v1@${arm.manifest.digest}`, manifestDigest: arm.manifest.digest, from: "registry" });
    expect(image.config.architecture).toBe("arm64");
    for (const digest of [multi.top.digest, arm.manifest.digest, arm.config.digest]) expect(await content.has(digest)).toBe(true);
    expect(await content.has(arm.layers[0]!.digest)).toBe(false);
  });

  it("resolves a digest-pinned reference from the content store without the network", async () => {
    const { content, images } = await fresh("pinned");
    const first = await createImageResolver({ content, images, registry: client })(`${registry.host}/multi:v1`, { platform: amd64 });
    // A client that can reach nothing: any network use would fail.
    const offline = new RegistryClient({ credentials: staticCredentials({}), insecure: ["127.0.0.1:1"], retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    const unreachableRef = first.ref.replace(registry.host, "127.0.0.1:1");
    const again = await createImageResolver({ content, images, registry: offline })(unreachableRef, { platform: amd64 });
    expect(again.from).toBe("local");
    expect(again.manifestDigest).toBe(first.manifestDigest);
    expect(again.ref).toBe(unreachableRef);
  });

  it("finds a named image in the local image store first and selects the platform from its index", async () => {
    const { content, images } = await fresh("local-named");
    for (const digest of [multi.top.digest, ...multi.images.flatMap((i) => [i.manifest.digest, i.config.digest])]) {
      await content.writeBytes(await readFile(join(layout, "blobs", "sha256", digestHex(digest))), { expected: digest });
    }
    await images.set("docker.io/library/kiln-only:latest", multi.top);
    const resolve = createImageResolver({ content, images, registry: client });
    const image = await resolve("kiln-only", { platform: amd64 });
    expect(image).toMatchObject({ from: "local", manifestDigest: multi.images[0]!.manifest.digest, ref: `docker.io/library/kiln-only:latest@${multi.images[0]!.manifest.digest}` });
    await expect(resolve("kiln-only", { platform: { os: "linux", architecture: "riscv64" } })).rejects.toBeInstanceOf(PlatformNotFoundError);
  });

  it("asks the registry even for a locally named image when pull is \"always\"", async () => {
    const { content, images } = await fresh("always");
    const name = `${registry.host}/multi:v1`;
    // A local name pointing at the amd64 manifest only; the registry has the index.
    await content.writeBytes(await readFile(join(layout, "blobs", "sha256", digestHex(multi.images[0]!.manifest.digest))));
    await content.writeBytes(await readFile(join(layout, "blobs", "sha256", digestHex(multi.images[0]!.config.digest))));
    await images.set(name, multi.images[0]!.manifest);
    const resolve = createImageResolver({ content, images, registry: client });
    expect((await resolve(name, { platform: amd64 })).from).toBe("local");
    expect(await content.has(multi.top.digest)).toBe(false);
    const pulled = await resolve(name, { platform: amd64, pull: "always" });
    expect(pulled).toMatchObject({ from: "registry", manifestDigest: multi.images[0]!.manifest.digest });
    expect(await content.has(multi.top.digest)).toBe(true);
  });
});
