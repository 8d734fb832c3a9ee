import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../solver/llb/index.js";
import { startRecordingProxy, uploadedBytes, type RecordingProxy } from "../../test/harness/recording-proxy.js";
import { startRegistry, type RunningRegistry } from "../../test/harness/registry.js";
import { startTokenServer, type TokenServer } from "../../test/harness/token-server.js";
import { writeTestImage, type TestImage } from "../../test/harness/test-image.js";
import { ContentStore } from "../content/content-store.js";
import { parseReference, type ImageIndex } from "../oci/index.js";
import { RegistryClient } from "./client.js";
import { staticCredentials } from "./credentials.js";
import { pushImage, type PushImageOptions } from "./push.js";

const execFileAsync = promisify(execFile);

const base = [{ path: "base.txt", content: "the base layer\n" }];
// Random base64 barely compresses, so this layer's blob stays far bigger than the chunk size below.
const big = [{ path: "big.txt", content: randomBytes(300_000).toString("base64") }];

function parts(image: TestImage): Pick<PushImageOptions, "blobs" | "manifests"> {
  const one = image.images[0]!;
  return { blobs: [one.config, ...one.layers], manifests: [image.top] };
}

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("skopeo", args, { maxBuffer: 64 << 20 });
  return stdout;
}

describe("pushImage() to docker-registry through a recording proxy", () => {
  let registry: RunningRegistry;
  let proxy: RecordingProxy;
  let dir: string;
  let content: ContentStore;
  let first: TestImage;
  let second: TestImage;
  let chunked: TestImage;
  const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startRecordingProxy(registry.host);
    dir = await mkdtemp(join(tmpdir(), "kiln-push-"));
    const root = join(dir, "content");
    first = await writeTestImage(root, { ref: "first", layers: [base, [{ path: "app.txt", content: "one\n" }]], cmd: ["cat", "/app.txt"] });
    second = await writeTestImage(root, { ref: "second", layers: [base, [{ path: "app.txt", content: "two\n" }]], cmd: ["cat", "/app.txt"] });
    chunked = await writeTestImage(root, { ref: "chunked", layers: [base, big] });
    content = await ContentStore.open(root);
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("pushes blobs, then the manifest, then the tag; skopeo inspects it and copies it back with the same digests", async () => {
    proxy.reset();
    const result = await pushImage(client, content, parseReference(`${proxy.host}/app`), { ...parts(first), tags: ["v1"] });
    expect(result.digest).toBe(first.top.digest);
    expect(result.blobs.map((b) => b.outcome)).toEqual(["uploaded", "uploaded", "uploaded"]);
    // The manifest goes after every blob, by digest, and then the tag.
    const puts = proxy.requests.filter((r) => r.method === "PUT").map((r) => r.path.replace(/\?.*/, ""));
    expect(puts.slice(-2)).toEqual([`/v2/app/manifests/${first.top.digest}`, "/v2/app/manifests/v1"]);
    const lastBlobPut = proxy.requests.findLastIndex((r) => r.path.includes("/blobs/uploads/"));
    expect(lastBlobPut).toBeLessThan(proxy.requests.findIndex((r) => r.path.includes("/manifests/")));

    const inspected = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${registry.host}/app:v1`)) as { Digest: string; Layers: string[] };
    expect(inspected.Digest).toBe(first.top.digest);
    expect(inspected.Layers).toEqual(first.images[0]!.layers.map((l) => l.digest));
    const copy = join(dir, "copy");
    await skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", `docker://${registry.host}/app:v1`, `oci:${copy}:v1`);
    const index = JSON.parse(await readFile(join(copy, "index.json"), "utf8")) as ImageIndex;
    expect(index.manifests[0]!.digest).toBe(first.top.digest);
  });

  it("a second push whose base layer is already in the repository uploads only the new layer and the config", async () => {
    proxy.reset();
    const result = await pushImage(client, content, parseReference(`${proxy.host}/app`), { ...parts(second), tags: ["v2"] });
    const image = second.images[0]!;
    expect(result.blobs.find((b) => b.descriptor.digest === image.layers[0]!.digest)?.outcome).toBe("existing");
    expect(uploadedBytes(proxy.requests)).toBe(image.layers[1]!.size + image.config.size);
    expect(proxy.requests.filter((r) => r.method === "HEAD")).toHaveLength(3);
  });

  it("a push whose blobs are all in the repository uploads no blob bytes and opens no upload session", async () => {
    proxy.reset();
    const result = await pushImage(client, content, parseReference(`${proxy.host}/app`), { ...parts(second), tags: ["again"] });
    expect(result.blobs.every((b) => b.outcome === "existing")).toBe(true);
    expect(uploadedBytes(proxy.requests)).toBe(0);
    expect(proxy.requests.filter((r) => r.path.includes("/blobs/uploads/"))).toEqual([]);
    const tags = JSON.parse(await skopeo("list-tags", "--tls-verify=false", `docker://${registry.host}/app`)) as { Tags: string[] };
    expect(tags.Tags.sort()).toEqual(["again", "v1", "v2"]);
  });

  it("mounts blobs from another repository of the same registry instead of uploading them", async () => {
    proxy.reset();
    const result = await pushImage(client, content, parseReference(`${proxy.host}/elsewhere/app`), {
      ...parts(first),
      tags: ["v1"],
      mountSources: () => ["app"],
    });
    expect(result.blobs.map((b) => b.outcome)).toEqual(["mounted", "mounted", "mounted"]);
    expect(uploadedBytes(proxy.requests)).toBe(0);
    expect(proxy.requests.filter((r) => r.method === "POST").every((r) => r.path.includes("mount=") && r.path.includes("from=app"))).toBe(true);
    const inspected = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${registry.host}/elsewhere/app:v1`)) as { Digest: string };
    expect(inspected.Digest).toBe(first.top.digest);
  });

  it("falls back to an upload when the mount source does not hold the blob", async () => {
    proxy.reset();
    const result = await pushImage(client, content, parseReference(`${proxy.host}/fallback`), { ...parts(first), tags: ["v1"], mountSources: () => ["no-such-repo"] });
    expect(result.blobs.map((b) => b.outcome)).toEqual(["uploaded", "uploaded", "uploaded"]);
    const image = first.images[0]!;
    expect(uploadedBytes(proxy.requests)).toBe(image.config.size + image.layers[0]!.size + image.layers[1]!.size);
  });

  it("uploads a blob bigger than the chunk size in PATCH chunks that the registry reassembles", async () => {
    proxy.reset();
    const layer = chunked.images[0]!.layers[1]!;
    expect(layer.size).toBeGreaterThan(3 * 65536);
    const result = await pushImage(client, content, parseReference(`${proxy.host}/chunked`), { ...parts(chunked), tags: ["v1"], chunkSize: 65536 });
    expect(result.digest).toBe(chunked.top.digest);
    const patches = proxy.requests.filter((r) => r.method === "PATCH");
    expect(patches).toHaveLength(Math.ceil(layer.size / 65536));
    expect(patches.reduce((sum, r) => sum + r.bodyBytes, 0)).toBe(layer.size);
    const copy = join(dir, "chunked-copy");
    await skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", `docker://${registry.host}/chunked:v1`, `oci:${copy}:v1`);
    const copied = await readFile(join(copy, "blobs", "sha256", layer.digest.slice("sha256:".length)));
    expect(copied.byteLength).toBe(layer.size);
  });

  it("retries a request the registry answers with 503 and still pushes the image", async () => {
    proxy.reset();
    proxy.failNext("PUT", 2);
    const result = await pushImage(client, content, parseReference(`${proxy.host}/retried`), { ...parts(first), tags: ["v1"], concurrency: 1 });
    expect(proxy.requests.filter((r) => r.status === 503)).toHaveLength(2);
    const inspected = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${registry.host}/retried:v1`)) as { Digest: string };
    expect(inspected.Digest).toBe(result.digest);
  });

  it("pushes by digest without creating any tag", async () => {
    proxy.reset();
    const result = await pushImage(client, content, parseReference(`${proxy.host}/bydigest`), { ...parts(first), tags: [] });
    const inspected = JSON.parse(await skopeo("inspect", "--no-tags", "--tls-verify=false", `docker://${registry.host}/bydigest@${result.digest}`)) as { Digest: Digest };
    expect(inspected.Digest).toBe(first.top.digest);
    expect(proxy.requests.filter((r) => r.path.includes("/manifests/")).map((r) => r.path)).toEqual([`/v2/bydigest/manifests/${first.top.digest}`]);
  });
});

describe("pushImage() to a registry with token auth", () => {
  const account = { user: "pusher", password: "s3cret" };
  let tokens: TokenServer;
  let registry: RunningRegistry;
  let dir: string;

  beforeAll(async () => {
    tokens = await startTokenServer(account);
    registry = await startRegistry({ tokenAuth: tokens.registryAuth });
    dir = await mkdtemp(join(tmpdir(), "kiln-push-auth-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("asks the token server for pull,push on the target and pull on a mount source, and pushes with that token", async () => {
    const root = join(dir, "content");
    const image = await writeTestImage(root, { ref: "a", layers: [base] });
    const content = await ContentStore.open(root);
    const client = new RegistryClient({ credentials: staticCredentials({ [registry.host]: { username: account.user, password: account.password } }) });
    await pushImage(client, content, parseReference(`${registry.host}/team/base`), { ...parts(image), tags: ["v1"] });
    const mounted = await pushImage(client, content, parseReference(`${registry.host}/team/app`), { ...parts(image), tags: ["v1"], mountSources: () => ["team/base"] });
    expect(mounted.blobs.map((b) => b.outcome)).toEqual(["mounted", "mounted"]);
    const scopes = tokens.requests.flatMap((r) => r.scopes);
    expect(scopes).toContain("repository:team/base:pull,push");
    expect(scopes).toContain("repository:team/app:pull,push");
    expect(scopes).toContain("repository:team/base:pull");
    expect(tokens.requests.every((r) => r.user === account.user)).toBe(true);
  });
});
