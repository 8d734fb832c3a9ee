import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";
import { skopeoInspect, unpackOciArchive } from "../harness/oci-tools.js";
import { startRecordingProxy, type RecordingProxy } from "../harness/recording-proxy.js";
import { readFile } from "node:fs/promises";

const registry = inject("registry");

describe("the local image store through bin/kiln", () => {
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

  test("a stored image is a FROM base with its registry gone; rmi removes its name", async () => {
    const name = `${proxy.host}/stored/base:v1`;
    const base = await scratch.context("base", { Dockerfile: `FROM ${proxy.host}/busybox:latest\nRUN echo from-the-store > /stored.txt\n` });
    const built = await runKiln(scratch.root, ["build", "--progress", "plain", "-t", name, base]);
    expect(built.code, built.stderr).toBe(0);
    // The registry's only way in is the proxy: once it is stopped, nothing can come from there.
    await proxy.stop();
    const app = await scratch.context("app", { Dockerfile: `FROM ${name}\nRUN cat /stored.txt > /copied.txt\n` });
    const out = join(scratch.dir, "app.tar");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=oci,dest=${out}`, app]);
    expect(run.code, run.stderr).toBe(0);
    const bundle = await unpackOciArchive(out, join(scratch.dir, "app-unpacked"));
    expect(await readFile(join(bundle, "rootfs/copied.txt"), "utf8")).toBe("from-the-store\n");

    const listed = await runKiln(scratch.root, ["images"]);
    expect(listed.stdout).toContain(`${proxy.host}/stored/base:v1`);
    const removed = await runKiln(scratch.root, ["rmi", name]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`Untagged: ${name}`);
    expect((await runKiln(scratch.root, ["images"])).stdout).not.toContain("stored/base");
    const again = await runKiln(scratch.root, ["rmi", name]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("no such image in the local store");
  });

  test("a fully cached rebuild writes the same config and keeps the image digest; --no-cache does not", async () => {
    const context = await scratch.context("same-digest", {
      Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo one > /one.txt\nENV STEP=two\nCOPY two.txt /\nLABEL last=yes\n`,
      "two.txt": "two\n",
    });
    const build = async (...flags: string[]): Promise<{ digest: string; config: { created: string; history: { created: string; created_by: string }[] } }> => {
      const out = join(scratch.dir, "same-digest.tar");
      const run = await runKiln(scratch.root, ["build", "--progress", "plain", ...flags, "-t", "same/digest:v1", "--output", `type=oci,dest=${out}`, context]);
      expect(run.code, run.stderr).toBe(0);
      const digest = /image digest: (sha256:[0-9a-f]{64})/.exec(`${run.stdout}${run.stderr}`)?.[1];
      expect(digest).toBeDefined();
      const config = (await skopeoInspect(`oci-archive:${out}`, { config: true })) as { created: string; history: { created: string; created_by: string }[] };
      return { digest: digest!, config };
    };
    const first = await build();
    const cached = await build();
    expect(cached.digest).toBe(first.digest);
    expect(cached.config).toEqual(first.config);
    // The config is as old as its newest line, and each line has its layer's (or neighbour's) time.
    expect(first.config.created).toBe(first.config.history.at(-1)!.created);
    const rebuilt = await build("--no-cache");
    expect(rebuilt.digest).not.toBe(first.digest);
    expect(Date.parse(rebuilt.config.created)).toBeGreaterThan(Date.parse(first.config.created));
  });

  test("kiln load reads a docker archive and an OCI archive into another state root, and builds FROM them", async () => {
    const context = await scratch.context("to-load", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo loaded > /loaded.txt\n` });
    const dockerTar = join(scratch.dir, "docker.tar");
    const ociTar = join(scratch.dir, "oci.tar");
    const run = await runKiln(scratch.root, [
      "build", "--progress", "plain",
      "--output", `type=docker,dest=${dockerTar},name=loaded/docker:v1`,
      "--output", `type=oci,dest=${ociTar},name=loaded/oci:v1`,
      context,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const other = join(scratch.dir, "other-root");
    const fromDocker = await runKiln(other, ["load", "-i", dockerTar]);
    expect(fromDocker.code, fromDocker.stderr).toBe(0);
    expect(fromDocker.stdout).toContain("Loaded image: loaded/docker:v1");
    const fromOci = await runKiln(other, ["load", ociTar]);
    expect(fromOci.code, fromOci.stderr).toBe(0);
    expect(fromOci.stdout).toContain("Loaded image: loaded/oci:v1");
    const images = await runKiln(other, ["images"]);
    expect(images.stdout).toContain("loaded/docker:v1");
    expect(images.stdout).toContain("loaded/oci:v1");

    const app = await scratch.context("from-loaded", { Dockerfile: "FROM loaded/docker:v1\nRUN cat /loaded.txt > /again.txt\n" });
    const out = join(scratch.dir, "from-loaded.tar");
    const built = await runKiln(other, ["build", "--progress", "plain", "--output", `type=oci,dest=${out}`, app]);
    expect(built.code, built.stderr).toBe(0);
    const bundle = await unpackOciArchive(out, join(scratch.dir, "from-loaded-unpacked"));
    expect(await readFile(join(bundle, "rootfs/again.txt"), "utf8")).toBe("loaded\n");
  });

  test("kiln load refuses a file that is not an image archive", async () => {
    const context = await scratch.context("not-an-archive", { "junk.txt": "not a tar" });
    const run = await runKiln(scratch.root, ["load", "-i", join(context, "junk.txt")]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Cannot load ".*junk\.txt"/);
  });
});
