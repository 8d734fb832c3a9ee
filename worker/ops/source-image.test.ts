import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opDigest, type Platform, type SourceOp } from "../../solver/llb/index.js";
import type { OpContext, SolverVertex } from "../../solver/op.js";
import { pushOciLayout, startRegistry, type RunningRegistry } from "../../test/harness/registry.js";
import { writeTestImage, type TestImage } from "../../test/harness/test-image.js";
import { ContentStore } from "../content/content-store.js";
import { RegistryClient } from "../registry/client.js";
import { staticCredentials } from "../registry/credentials.js";
import { createOverlaySnapshotter, withMountedSnapshot, type Snapshotter } from "../snapshotter/index.js";
import { createImageSourceRunner } from "./source-image.js";

const amd64 = { os: "linux", architecture: "amd64" };
const arm64 = { os: "linux", architecture: "arm64" };

function vertexFor(identifier: string, platform?: Platform): SolverVertex {
  const op: SourceOp = { kind: "source", identifier, attrs: {}, ...(platform === undefined ? {} : { platform }) };
  return { digest: opDigest(op), op, metadata: {}, inputs: [] };
}

function recordingContext(): { context: OpContext; bytes: Map<string, { current: number; total: number | undefined }> } {
  const bytes = new Map<string, { current: number; total: number | undefined }>();
  return {
    bytes,
    context: {
      signal: new AbortController().signal,
      progress: { log: () => {}, bytes: (id, current, total) => bytes.set(id, { current, total }) },
    },
  };
}

describe("createImageSourceRunner()", () => {
  let registry: RunningRegistry;
  let dir: string;
  let layered: TestImage;
  let multi: TestImage;
  let empty: TestImage;
  let content: ContentStore;
  let snapshotter: Snapshotter;
  const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });

  beforeAll(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), "kiln-source-image-"));
    const layout = join(dir, "layout");
    layered = await writeTestImage(layout, {
      ref: "layered:v1",
      layers: [[{ path: "etc/motd", content: "base\n" }, { path: "bin/tool", content: "#!/bin/sh\n", mode: 0o755 }], [{ path: "etc/motd", content: "top\n" }]],
    });
    multi = await writeTestImage(layout, { ref: "multi:v1", platforms: [amd64, arm64] });
    empty = await writeTestImage(layout, { ref: "empty:v1", layers: [] });
    for (const ref of ["layered:v1", "multi:v1", "empty:v1"]) await pushOciLayout(layout, ref, registry.host);
    content = await ContentStore.open(join(dir, "content"));
    snapshotter = await createOverlaySnapshotter(join(dir, "snapshots"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("cacheMap() of a digest-pinned image is the op digest with no inputs, explained by the pinned reference", async () => {
    const vertex = vertexFor(`docker-image://${registry.host}/layered:v1@${layered.top.digest}`);
    const runner = createImageSourceRunner({ content, registry: client, snapshotter }, vertex);
    expect(await runner.cacheMap(recordingContext().context)).toEqual({
      digest: vertex.digest,
      deps: [],
      explain: { resolved: `${registry.host}/layered:v1@${layered.top.digest}` },
    });
  });

  it("run() pulls the missing blobs with byte progress and unpacks the layers in order", async () => {
    const vertex = vertexFor(`docker-image://${registry.host}/layered:v1@${layered.top.digest}`);
    const runner = createImageSourceRunner({ content, registry: client, snapshotter }, vertex);
    const { context, bytes } = recordingContext();
    const [result] = await runner.run([], context);
    for (const layer of layered.images[0]!.layers) {
      expect(await content.has(layer.digest)).toBe(true);
      expect(bytes.get(layer.digest)).toEqual({ current: layer.size, total: layer.size });
    }
    const files = await withMountedSnapshot(await snapshotter.view(result!.id), async (root) => ({
      motd: await readFile(join(root, "etc/motd"), "utf8"),
      tool: await readFile(join(root, "bin/tool"), "utf8"),
    }));
    expect(files).toEqual({ motd: "top\n", tool: "#!/bin/sh\n" });
  });

  it("run() of an image already in the content store needs no registry and reuses the unpacked snapshots", async () => {
    const pinned = `docker-image://${registry.host}/layered:v1@${layered.top.digest}`;
    const first = await createImageSourceRunner({ content, registry: client, snapshotter }, vertexFor(pinned)).run([], recordingContext().context);
    const offline = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    const unreachable = pinned.replace(registry.host, "127.0.0.1:1");
    const { context, bytes } = recordingContext();
    const second = await createImageSourceRunner({ content, registry: offline, snapshotter }, vertexFor(unreachable)).run([], context);
    expect(second).toEqual(first);
    expect(bytes.size).toBe(0);
  });

  it("run() of an index digest unpacks the manifest for the op's platform", async () => {
    const vertex = vertexFor(`docker-image://${registry.host}/multi:v1@${multi.top.digest}`, arm64);
    const [result] = await createImageSourceRunner({ content, registry: client, snapshotter }, vertex).run([], recordingContext().context);
    const platform = await withMountedSnapshot(await snapshotter.view(result!.id), (root) => readFile(join(root, "platform.txt"), "utf8"));
    expect(platform).toBe("linux/arm64\n");
  });

  it("run() of an image without layers returns a committed empty snapshot", async () => {
    const vertex = vertexFor(`docker-image://${registry.host}/empty:v1@${empty.top.digest}`);
    const [result] = await createImageSourceRunner({ content, registry: client, snapshotter }, vertex).run([], recordingContext().context);
    expect((await snapshotter.info(result!.id)).kind).toBe("committed");
  });

  it("cacheMap() of a tag resolves it, so the key follows the manifest the tag names", async () => {
    const byTag = createImageSourceRunner({ content, registry: client, snapshotter }, vertexFor(`docker-image://${registry.host}/multi:v1`, amd64));
    const byOtherPlatform = createImageSourceRunner({ content, registry: client, snapshotter }, vertexFor(`docker-image://${registry.host}/multi:v1`, arm64));
    const a = await byTag.cacheMap(recordingContext().context);
    const b = await byOtherPlatform.cacheMap(recordingContext().context);
    expect(a.digest).not.toBe(b.digest);
    expect(a.deps).toEqual([]);
  });
});
