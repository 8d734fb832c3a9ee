import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

interface RawIndex {
  readonly mediaType: string;
  readonly manifests: readonly { readonly mediaType: string; readonly digest: string; readonly platform: Record<string, string> }[];
  readonly annotations?: Record<string, string>;
}

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("skopeo", args, { maxBuffer: 64 << 20 });
  return stdout;
}

// COPY-only stages build for any platform without emulation; TARGETARCH differs per platform, so
// each platform's image shows that the frontend lowered the target once per platform.
const DOCKERFILE = "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\nCOPY common.txt /\n";
const PLATFORMS = "linux/amd64,linux/arm64";

describe("--platform with several platforms", () => {
  let scratch: Scratch;
  let context: string;
  beforeAll(async () => {
    scratch = await createScratch();
    context = await scratch.context("ctx", { Dockerfile: DOCKERFILE, "amd64.txt": "amd64\n", "arm64.txt": "arm64\n", "common.txt": "both\n" });
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  const build = async (...args: string[]): Promise<string> => {
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--platform", PLATFORMS, ...args, context]);
    expect(run.code, run.stderr).toBe(0);
    return run.stderr;
  };

  test("push=true pushes an OCI index with one manifest per platform, its annotations, and each platform's files", async () => {
    const name = `${registry}/multi/app:v1`;
    const metadataFile = join(scratch.dir, "push.json");
    await build("--metadata-file", metadataFile, "--output", `type=image,name=${name},push=true,annotation-index.com.example.i=idx,annotation-manifest[linux/arm64].com.example.m=arm`);
    const raw = await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${name}`);
    const index = JSON.parse(raw) as RawIndex;
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((m) => m.platform)).toEqual([{ architecture: "amd64", os: "linux" }, { architecture: "arm64", os: "linux" }]);
    expect(index.annotations).toEqual({ "com.example.i": "idx" });
    const metadata = JSON.parse(await readFile(metadataFile, "utf8")) as Record<string, unknown>;
    expect(metadata["containerimage.digest"]).toBe(`sha256:${createHash("sha256").update(raw.replace(/\n$/, "")).digest("hex")}`);

    const arm = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${registry}/multi/app@${index.manifests[1]!.digest}`)) as { annotations?: Record<string, string> };
    expect(arm.annotations).toEqual({ "com.example.m": "arm" });
    for (const arch of ["amd64", "arm64"]) {
      const config = JSON.parse(await skopeo("inspect", "--config", "--tls-verify=false", "--override-arch", arch, `docker://${name}`)) as { architecture: string };
      expect(config.architecture).toBe(arch);
      const copy = join(scratch.dir, `copy-${arch}`);
      await skopeo("copy", "--quiet", "--src-tls-verify=false", "--override-arch", arch, `docker://${name}`, `oci:${copy}:v1`);
      const bundle = join(scratch.dir, `bundle-${arch}`);
      await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${copy}:v1`, bundle]);
      expect(await readFile(join(bundle, "rootfs/arch.txt"), "utf8")).toBe(`${arch}\n`);
    }
  });

  test("type=oci writes a layout whose index.json names the index, which skopeo reads with every platform", async () => {
    const dest = join(scratch.dir, "layout");
    await build("--output", `type=oci,dest=${dest},tar=false`);
    const top = JSON.parse(await readFile(join(dest, "index.json"), "utf8")) as RawIndex;
    expect(top.manifests).toHaveLength(1);
    expect(top.manifests[0]?.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    const index = JSON.parse(await skopeo("inspect", "--raw", `oci:${dest}:latest`)) as RawIndex;
    expect(index.manifests.map((m) => m.platform["architecture"])).toEqual(["amd64", "arm64"]);
    const arm = JSON.parse(await skopeo("inspect", "--override-arch", "arm64", `oci:${dest}:latest`)) as { Architecture: string };
    expect(arm.Architecture).toBe("arm64");
  });

  test("type=local and type=tar write one directory per platform, named as BuildKit names them", async () => {
    const dest = join(scratch.dir, "local");
    const tarFile = join(scratch.dir, "fs.tar");
    await build("--output", `type=local,dest=${dest}`, "--output", `type=tar,dest=${tarFile}`);
    expect(await readFile(join(dest, "linux_amd64/arch.txt"), "utf8")).toBe("amd64\n");
    expect(await readFile(join(dest, "linux_arm64/arch.txt"), "utf8")).toBe("arm64\n");
    const { stdout } = await execFileAsync("tar", ["-tf", tarFile]);
    expect(stdout.split("\n").filter((l) => l !== "")).toEqual([
      "linux_amd64/", "linux_amd64/arch.txt", "linux_amd64/common.txt", "linux_arm64/", "linux_arm64/arch.txt", "linux_arm64/common.txt",
    ]);
  });

  test("type=docker refuses several platforms with a clear error", async () => {
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--platform", PLATFORMS, "--output", `type=docker,dest=${join(scratch.dir, "d.tar")}`, context]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("Cannot export 2 platforms to a docker archive: the docker exporter does not support multi-platform images (manifest lists)");
  });

  test("-t stores the index in the local image store, and a later FROM picks the platform's manifest from it", async () => {
    await build("-t", "kiln.test/multi:v1");
    const child = await scratch.context("child", { Dockerfile: "FROM kiln.test/multi:v1\n" });
    const dest = join(scratch.dir, "child-out");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--platform", "linux/arm64", "--output", `type=local,dest=${dest}`, child]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(join(dest, "arch.txt"), "utf8")).toBe("arm64\n");
  });
});
