import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, test } from "vitest";
import { createScratch, progressEvents, runKiln, type KilnRun, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/** Fixed, so that two builds of the same steps make the same image digest. */
const ENV = { SOURCE_DATE_EPOCH: "1700000000" };

interface Built {
  readonly run: KilnRun;
  /** Dockerfile steps by name: "ran" or "cached" (kiln's own steps: context, import, export, left out). */
  readonly steps: Record<string, "ran" | "cached">;
  readonly digest: string | undefined;
  readonly warnings: readonly string[];
}

async function build(scratch: Scratch, root: string, context: string, args: readonly string[]): Promise<Built> {
  const metadata = join(scratch.dir, `metadata-${Math.random().toString(16).slice(2)}.json`);
  const run = await runKiln(root, ["build", "--progress", "rawjson", "--metadata-file", metadata, ...args, context], { env: ENV });
  expect(run.code, run.stderr).toBe(0);
  const steps: Record<string, "ran" | "cached"> = {};
  const warnings: string[] = [];
  for (const event of progressEvents(run.stderr)) {
    if (event.type === "warning") warnings.push(event.message);
    if (!("name" in event) || !/^\[/.test(event.name) || event.name === "[internal] load build context") continue;
    if (event.type === "vertex.cached" && steps[event.name] === undefined) steps[event.name] = "cached";
    if (event.type === "vertex.started") steps[event.name] = "ran";
  }
  const meta = JSON.parse(await readFile(metadata, "utf8")) as Record<string, unknown>;
  return { run, steps, digest: meta["containerimage.digest"] as string | undefined, warnings };
}

function stepsLike(steps: Record<string, string>, fragment: string): string[] {
  return Object.entries(steps).filter(([name]) => name.includes(fragment)).map(([, status]) => status);
}

const MULTISTAGE = [
  `FROM ${registry}/busybox:latest AS builder`,
  "RUN echo built > /artifact",
  `FROM ${registry}/busybox:latest`,
  "RUN echo base > /base",
  "COPY --from=builder /artifact /artifact",
  "RUN cat /artifact /base > /both",
  "",
].join("\n");

describe("cache export and import", () => {
  let scratch: Scratch;
  beforeEach(async () => {
    scratch = await createScratch();
  });
  afterEach(async () => {
    await scratch.dispose();
  });

  test("mode=max to a local directory: a fresh root that imports it runs nothing and makes the same image", async () => {
    const context = await scratch.context("max", { Dockerfile: MULTISTAGE });
    const cacheDir = join(scratch.dir, "cache-max");
    const first = await build(scratch, scratch.root, context, ["--output", `type=oci,dest=${join(scratch.dir, "a.tar")}`, "--cache-to", `type=local,dest=${cacheDir},mode=max`]);
    expect(Object.values(first.steps)).toContain("ran");
    expect((await readdir(cacheDir)).sort()).toEqual(["blobs", "index.json", "oci-layout"]);

    const second = await build(scratch, join(scratch.dir, "fresh"), context, ["--output", `type=oci,dest=${join(scratch.dir, "b.tar")}`, "--cache-from", `type=local,src=${cacheDir}`]);
    expect(second.steps, second.run.stderr).not.toEqual({});
    expect(Object.entries(second.steps).filter(([, s]) => s === "ran")).toEqual([]);
    expect(stepsLike(second.steps, "RUN echo built")).toEqual(["cached"]);
    expect(second.digest).toBe(first.digest);
  });

  test("mode=min carries only the final stage's chain: its steps are cached, the other stage's step runs", async () => {
    const context = await scratch.context("min", { Dockerfile: MULTISTAGE });
    const cacheDir = join(scratch.dir, "cache-min");
    const first = await build(scratch, scratch.root, context, ["--output", `type=oci,dest=${join(scratch.dir, "a.tar")}`, "--export-cache", `type=local,dest=${cacheDir},mode=min`]);
    const second = await build(scratch, join(scratch.dir, "fresh"), context, ["--output", `type=oci,dest=${join(scratch.dir, "b.tar")}`, "--import-cache", `type=local,src=${cacheDir}`]);
    expect(stepsLike(second.steps, "RUN echo base")).toEqual(["cached"]);
    expect(stepsLike(second.steps, "COPY --from=builder")).toEqual(["cached"]);
    expect(stepsLike(second.steps, "RUN cat")).toEqual(["cached"]);
    // Not in a min export; COPY --from asks for its stage's result to check its files.
    expect(stepsLike(second.steps, "RUN echo built")).toEqual(["ran"]);
    expect(second.digest).toBe(first.digest);
  });

  test("a registry cache round trip: a fresh root that imports it runs nothing", async () => {
    const context = await scratch.context("registry", { Dockerfile: MULTISTAGE });
    const ref = `${registry}/kiln-cache-test:max-${Date.now()}`;
    const first = await build(scratch, scratch.root, context, ["--output", `type=oci,dest=${join(scratch.dir, "a.tar")}`, "--cache-to", `type=registry,ref=${ref},mode=max`]);
    const second = await build(scratch, join(scratch.dir, "fresh"), context, ["--output", `type=oci,dest=${join(scratch.dir, "b.tar")}`, "--cache-from", ref]);
    expect(Object.keys(second.steps).length).toBeGreaterThan(3);
    expect(Object.entries(second.steps).filter(([, s]) => s === "ran")).toEqual([]);
    expect(second.digest).toBe(first.digest);
  });

  test("an inline cache travels in the pushed image's config and is imported from the image", async () => {
    const context = await scratch.context("inline", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "RUN echo one > /one", "RUN echo two > /two", ""].join("\n"),
    });
    const image = `${registry}/kiln-inline-test:${Date.now()}`;
    await build(scratch, scratch.root, context, ["--output", `type=image,name=${image},push=true`, "--cache-to", "type=inline"]);
    const second = await build(scratch, join(scratch.dir, "fresh"), context, ["--output", `type=oci,dest=${join(scratch.dir, "b.tar")}`, "--cache-from", `type=registry,ref=${image}`]);
    expect(stepsLike(second.steps, "RUN echo one")).toEqual(["cached"]);
    expect(stepsLike(second.steps, "RUN echo two")).toEqual(["cached"]);
  });

  test("cache mounts exported with cache-mounts=true reach a changed RUN on a fresh root", async () => {
    const first = await scratch.context("mounts-a", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo downloaded > /var/cache/pkgs/package", ""].join("\n"),
    });
    const cacheDir = join(scratch.dir, "cache-mounts");
    await build(scratch, scratch.root, first, ["--cache-to", `type=local,dest=${cacheDir},mode=max,cache-mounts=true`]);
    const second = await scratch.context("mounts-b", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs echo downloaded > /var/cache/pkgs/package",
        "RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs cp /var/cache/pkgs/package /seen",
        "",
      ].join("\n"),
    });
    const out = join(scratch.dir, "out");
    const built = await build(scratch, join(scratch.dir, "fresh"), second, ["--output", `type=local,dest=${out}`, "--cache-from", `type=local,src=${cacheDir}`]);
    expect(stepsLike(built.steps, "cp /var/cache/pkgs/package")).toEqual(["ran"]);
    expect(await readFile(join(out, "seen"), "utf8")).toBe("downloaded\n");
  });

  test("a corrupt blob in an imported local cache is a warning, and the steps that need it run", async () => {
    const context = await scratch.context("corrupt", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "RUN echo one > /one", ""].join("\n"),
    });
    const cacheDir = join(scratch.dir, "cache-corrupt");
    await build(scratch, scratch.root, context, ["--cache-to", `type=local,dest=${cacheDir},mode=max`]);
    // Every layer blob of the cache gets other bytes of the same size.
    const index = JSON.parse(await readFile(join(cacheDir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const blob = (digest: string): string => join(cacheDir, "blobs", "sha256", digest.slice("sha256:".length));
    const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), "utf8")) as { layers: { digest: string; size: number }[] };
    for (const layer of manifest.layers) await writeFile(blob(layer.digest), Buffer.alloc(layer.size, 7));
    const again = await build(scratch, join(scratch.dir, "fresh"), context, ["--cache-from", `type=local,src=${cacheDir}`]);
    expect(stepsLike(again.steps, "RUN echo one")).toContain("ran");
    expect(again.warnings.some((w) => w.includes(cacheDir) && w.includes("hash"))).toBe(true);
  });

  test("an unknown cache type or option is a usage error naming the flag", async () => {
    const context = await scratch.context("usage", { Dockerfile: `FROM ${registry}/busybox:latest\n` });
    const unknown = await runKiln(scratch.root, ["build", "--cache-to", "type=s3,bucket=b", context]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--cache-to");
    expect(unknown.stderr).toContain('"s3"');
    const buildctl = await runKiln(scratch.root, ["build", "--import-cache", "type=local,source=/tmp", context]);
    expect(buildctl.code).toBe(2);
    expect(buildctl.stderr).toContain("--import-cache");
    expect(buildctl.stderr).toContain('"source"');
  });
});
