import { execFile } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ImageMetadata } from "../solver/llb/index.js";
import { ContentStore } from "../worker/content/content-store.js";
import type { ImageIndex } from "../worker/oci/index.js";
import { buildImage, type BuiltImage } from "./image/build-image.js";
import { REF_NAME_ANNOTATION, writeOciLayout } from "./oci-layout.js";
import { fixtureLayer, fixtureTar } from "./test-layers.js";

const execFileAsync = promisify(execFile);

async function skopeoInspect(ref: string): Promise<{ Digest: string; Layers: string[]; Architecture: string; Env?: string[] }> {
  const { stdout } = await execFileAsync("skopeo", ["inspect", ref]);
  return JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string };
}

const metadata: ImageMetadata = {
  platform: { os: "linux", architecture: "amd64" },
  config: { Env: ["PATH=/bin"], Cmd: ["/bin/hello"], WorkingDir: "/" },
  history: [{ created_by: "base" }, { created_by: "RUN rm /etc/remove-me" }],
};

describe("writeOciLayout()", () => {
  let dir: string;
  let content: ContentStore;
  let image: BuiltImage;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-oci-layout-"));
    content = await ContentStore.open(join(dir, "content"));
    const base = await fixtureTar([
      { kind: "dir", path: "bin" },
      { kind: "file", path: "bin/hello", content: "#!/bin/sh\necho hi\n", mode: 0o755 },
      { kind: "symlink", path: "bin/hi", target: "hello" },
      { kind: "hardlink", path: "bin/hello2", target: "bin/hello" },
      { kind: "dir", path: "etc" },
      { kind: "file", path: "etc/remove-me", content: "bye\n" },
      { kind: "file", path: "etc/keep", content: "kept\n", mode: 0o600 },
      { kind: "dir", path: "tmp", mode: 0o1777 },
    ]);
    const top = await fixtureTar([{ kind: "dir", path: "etc" }, { kind: "whiteout", path: "etc/remove-me" }]);
    image = await buildImage({ layers: [fixtureLayer("base", base), fixtureLayer("top", top)], image: metadata, content, epoch: 0 });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a tar that skopeo inspects and umoci unpacks with files, modes, links and the whiteout applied", async () => {
    const archive = join(dir, "image.tar");
    await writeOciLayout(image, content, { dest: archive, tar: true, names: ["example.com/hello:v1"] });

    const inspected = await skopeoInspect(`oci-archive:${archive}`);
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));

    const layout = join(dir, "layout");
    await mkdir(layout);
    await execFileAsync("tar", ["-xf", archive, "-C", layout]);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as ImageIndex;
    expect(index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION])).toEqual(["v1"]);
    const bundle = join(dir, "bundle");
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${layout}:v1`, bundle]);
    const rootfs = join(bundle, "rootfs");
    expect(await readFile(join(rootfs, "bin/hello"), "utf8")).toBe("#!/bin/sh\necho hi\n");
    expect((await lstat(join(rootfs, "bin/hello"))).mode & 0o7777).toBe(0o755);
    expect(await readlink(join(rootfs, "bin/hi"))).toBe("hello");
    expect((await lstat(join(rootfs, "bin/hello2"))).ino).toBe((await lstat(join(rootfs, "bin/hello"))).ino);
    expect((await lstat(join(rootfs, "etc/keep"))).mode & 0o7777).toBe(0o600);
    expect((await lstat(join(rootfs, "tmp"))).mode & 0o7777).toBe(0o1777);
    await expect(lstat(join(rootfs, "etc/remove-me"))).rejects.toMatchObject({ code: "ENOENT" });
    const runtime = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as { process: { args: string[] } };
    expect(runtime.process.args).toEqual(["/bin/hello"]);
  });

  it("fails without leaving a file behind when a blob is missing from the content store", async () => {
    await content.delete(image.layers[1]!.digest);
    const archive = join(dir, "broken.tar");
    await expect(writeOciLayout(image, content, { dest: archive, tar: true })).rejects.toMatchObject({ code: "ENOENT" });
    expect((await readdir(dir)).filter((name) => name.startsWith("broken"))).toEqual([]);
  });

  it("writes the same tar bytes twice", async () => {
    await writeOciLayout(image, content, { dest: join(dir, "a.tar"), tar: true });
    await writeOciLayout(image, content, { dest: join(dir, "b.tar"), tar: true });
    expect((await readFile(join(dir, "a.tar"))).equals(await readFile(join(dir, "b.tar")))).toBe(true);
  });

  it("writes a layout directory that skopeo reads by name and keeps the other images already in it", async () => {
    const layout = join(dir, "dir-layout");
    await writeOciLayout(image, content, { dest: layout, tar: false, names: ["hello:one"] });
    const other = await buildImage({ layers: [], image: { ...metadata, history: [] }, content, epoch: 5 });
    await writeOciLayout(other, content, { dest: layout, tar: false, names: ["hello:two"] });

    expect((await skopeoInspect(`oci:${layout}:one`)).Digest).toBe(image.manifest.digest);
    expect((await skopeoInspect(`oci:${layout}:two`)).Digest).toBe(other.manifest.digest);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as ImageIndex;
    expect(index.manifests.map((m) => m.annotations?.["io.containerd.image.name"])).toEqual(["docker.io/library/hello:one", "docker.io/library/hello:two"]);
  });

  it("names the only entry latest when no name is given, so skopeo and umoci both find it without a tag", async () => {
    const archive = join(dir, "unnamed.tar");
    await writeOciLayout(image, content, { dest: archive, tar: true });
    expect((await skopeoInspect(`oci-archive:${archive}`)).Digest).toBe(image.manifest.digest);
    const layout = join(dir, "unnamed");
    await mkdir(layout);
    await execFileAsync("tar", ["-xf", archive, "-C", layout]);
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", layout, join(dir, "unnamed-bundle")]);
    expect(await readFile(join(dir, "unnamed-bundle/rootfs/etc/keep"), "utf8")).toBe("kept\n");
  });
});
