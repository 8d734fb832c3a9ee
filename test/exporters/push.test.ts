import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";
import { startRecordingProxy, uploadedBytes, type RecordingProxy } from "../harness/recording-proxy.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

interface RawManifest {
  readonly config: { readonly digest: string; readonly size: number };
  readonly layers: readonly { readonly digest: string; readonly size: number }[];
}

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("skopeo", args, { maxBuffer: 64 << 20 });
  return stdout;
}

// Every kiln request goes through a recording proxy in front of the suite's real docker-registry,
// so the tests count what kiln actually sent: the base image lives in the same registry.
describe("kiln build --push", () => {
  let scratch: Scratch;
  let proxy: RecordingProxy;
  beforeAll(async () => {
    scratch = await createScratch();
    proxy = await startRecordingProxy(registry);
  });
  afterAll(async () => {
    await proxy.stop();
    await scratch.dispose();
  });

  const dockerfile = (line: string): string => `FROM ${proxy.host}/busybox:latest\nRUN echo ${line} > /msg.txt\nCMD ["cat", "/msg.txt"]\n`;

  test("-t REG/REPO:TAG --push pushes an image skopeo reads back, mounting the base layer from the base image's repository", async () => {
    const context = await scratch.context("first", { Dockerfile: dockerfile("first") });
    const metadataFile = join(scratch.dir, "first.json");
    const iidfile = join(scratch.dir, "first.iid");
    proxy.reset();
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "-t", `${proxy.host}/pushed/app:v1`, "--push", "--metadata-file", metadataFile, "--iidfile", iidfile, context]);
    expect(run.code, run.stderr).toBe(0);
    const metadata = JSON.parse(await readFile(metadataFile, "utf8")) as Record<string, unknown>;
    const digest = metadata["containerimage.digest"] as string;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(metadata["image.name"]).toBe(`${proxy.host}/pushed/app:v1`);
    expect(metadata["containerimage.descriptor"]).toMatchObject({ digest, mediaType: "application/vnd.oci.image.manifest.v1+json" });
    // docker build's --iidfile holds the image ID: the config digest.
    expect(await readFile(iidfile, "utf8")).toBe(metadata["containerimage.config.digest"]);
    expect(run.stderr).toContain(`pushed manifest ${proxy.host}/pushed/app@${digest}`);

    const inspected = JSON.parse(await skopeo("inspect", "--tls-verify=false", `docker://${registry}/pushed/app:v1`)) as { Digest: string };
    expect(inspected.Digest).toBe(digest);
    const copy = join(scratch.dir, "first-copy");
    await skopeo("copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", `docker://${registry}/pushed/app:v1`, `oci:${copy}:v1`);
    const index = JSON.parse(await readFile(join(copy, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(index.manifests[0]!.digest).toBe(digest);

    const manifest = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${registry}/pushed/app:v1`)) as RawManifest;
    const [base, added] = [manifest.layers[0]!, manifest.layers.at(-1)!];
    expect(proxy.requests.some((r) => r.method === "POST" && r.path.includes(`mount=${encodeURIComponent(base.digest)}`) && r.path.includes("from=busybox"))).toBe(true);
    expect(uploadedBytes(proxy.requests)).toBe(added.size + manifest.config.size);
  });

  test("a second image on the same base pushed to the same repository uploads only its new layer and config", async () => {
    const context = await scratch.context("second", { Dockerfile: dockerfile("second") });
    proxy.reset();
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=image,name=${proxy.host}/pushed/app:v2,push=true`, context]);
    expect(run.code, run.stderr).toBe(0);
    const manifest = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${registry}/pushed/app:v2`)) as RawManifest;
    expect(uploadedBytes(proxy.requests)).toBe(manifest.layers.at(-1)!.size + manifest.config.size);
    expect(proxy.requests.filter((r) => r.method === "PATCH" || (r.method === "PUT" && r.path.includes("/blobs/uploads/")))).toHaveLength(2);
  });

  test("pushing a cached rebuild under a new tag uploads nothing: its layers and its config are in the repository", async () => {
    const context = await scratch.context("again", { Dockerfile: dockerfile("second") });
    proxy.reset();
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "-t", `${proxy.host}/pushed/app:v3`, "--push", context]);
    expect(run.code, run.stderr).toBe(0);
    const v2 = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${registry}/pushed/app:v2`)) as RawManifest;
    const v3 = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${registry}/pushed/app:v3`)) as RawManifest;
    // The cached rebuild is the same image: its history times come from the cached layers.
    expect(v3).toEqual(v2);
    expect(uploadedBytes(proxy.requests)).toBe(0);
    const heads = proxy.requests.filter((r) => r.method === "HEAD").map((r) => r.path);
    for (const blob of [...v3.layers, v3.config]) expect(heads).toContain(`/v2/pushed/app/blobs/${blob.digest}`);
  });

  test("push-by-digest=true pushes the manifest without a tag and reports its digest", async () => {
    const context = await scratch.context("bydigest", { Dockerfile: dockerfile("bydigest") });
    const metadataFile = join(scratch.dir, "bydigest.json");
    proxy.reset();
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--metadata-file", metadataFile, "--output", `type=image,name=${proxy.host}/pushed/bydigest,push=true,push-by-digest=true`, context]);
    expect(run.code, run.stderr).toBe(0);
    const metadata = JSON.parse(await readFile(metadataFile, "utf8")) as Record<string, string>;
    const digest = metadata["containerimage.digest"]!;
    const manifestPuts = proxy.requests.filter((r) => r.method === "PUT" && r.path.includes("/manifests/")).map((r) => r.path);
    expect(manifestPuts).toEqual([`/v2/pushed/bydigest/manifests/${digest}`]);
    const inspected = JSON.parse(await skopeo("inspect", "--no-tags", "--tls-verify=false", `docker://${registry}/pushed/bydigest@${digest}`)) as { Digest: string };
    expect(inspected.Digest).toBe(digest);
  });

  test("a layer of incompressible bytes is pushed as stored gzip that skopeo copies and umoci unpacks byte for byte", async () => {
    const random = randomBytes(3 << 20);
    const text = "kiln stores what deflate cannot shrink\n".repeat(50_000);
    const context = await scratch.context("incompressible", {
      Dockerfile: `FROM ${proxy.host}/busybox:latest\nCOPY random.bin text.txt /data/\n`,
      "text.txt": text,
    });
    await writeFile(join(context, "random.bin"), random);
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "-t", `${proxy.host}/pushed/random:v1`, "--push", context]);
    expect(run.code, run.stderr).toBe(0);
    const manifest = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${registry}/pushed/random:v1`)) as RawManifest;
    // Random bytes stored (5 bytes per 64 KiB on top), the text deflated to a small fraction.
    expect(manifest.layers.at(-1)!.size).toBeLessThan(random.byteLength * 1.001 + text.length * 0.1);
    const layout = join(scratch.dir, "random-copy");
    await skopeo("copy", "--quiet", "--src-tls-verify=false", `docker://${registry}/pushed/random:v1`, `oci:${layout}:v1`);
    const bundle = join(scratch.dir, "random-bundle");
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${layout}:v1`, bundle]);
    expect((await readFile(join(bundle, "rootfs", "data", "random.bin"))).equals(random)).toBe(true);
    expect(await readFile(join(bundle, "rootfs", "data", "text.txt"), "utf8")).toBe(text);
  });
});
