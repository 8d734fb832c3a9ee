import { execFile } from "node:child_process";
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ImageSpec } from "../solver/llb/index.js";
import { ContentStore } from "../worker/content/content-store.js";
import { LocalImages } from "../worker/content/image-index.js";
import { importRootfs } from "./import.js";
import { writeOciLayout } from "./oci-layout.js";
import { packDirectory } from "./rootfs-tar.js";
import { fixtureTar } from "./test-layers.js";

const execFileAsync = promisify(execFile);
const platform = { os: "linux", architecture: "amd64" };

/** A busybox root filesystem as kiln's base image has it: every applet a symlink in /bin. */
async function makeBusyboxRootfs(root: string): Promise<string[]> {
  await mkdir(join(root, "bin"), { recursive: true });
  await copyFile("/bin/busybox", join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);
  const applets = (await execFileAsync("/bin/busybox", ["--list"])).stdout.split("\n").filter((a) => a !== "" && a !== "busybox");
  for (const applet of applets) await symlink("busybox", join(root, "bin", applet));
  await mkdir(join(root, "etc"));
  await writeFile(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  await writeFile(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  await mkdir(join(root, "tmp"));
  await chmod(join(root, "tmp"), 0o1777);
  return applets;
}

async function tarListing(file: string): Promise<string[]> {
  const { stdout } = await execFileAsync("tar", ["-tvzf", file], { maxBuffer: 16 << 20 });
  return stdout.split("\n").filter((l) => l !== "");
}

describe("importRootfs()", () => {
  let dir: string;
  let content: ContentStore;
  let images: LocalImages;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-import-"));
    content = await ContentStore.open(join(dir, "content"));
    images = new LocalImages(content.root);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("imports a busybox rootfs that skopeo finds in the store by name and that runs after umoci unpacks it", async () => {
    const rootfs = join(dir, "rootfs");
    const applets = await makeBusyboxRootfs(rootfs);
    expect(applets.length).toBeGreaterThan(200);
    const image = await importRootfs({ source: rootfs, name: "busybox", content, images, platform, config: { Cmd: ["sh"] } });

    const { stdout } = await execFileAsync("skopeo", ["inspect", `oci:${content.root}:docker.io/library/busybox:latest`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(image.manifest.digest);
    expect(await images.get("docker.io/library/busybox:latest")).toMatchObject({ digest: image.manifest.digest });
    expect(image.spec.history).toEqual([{ created: image.spec.created, created_by: "kiln import" }]);
    expect(image.spec.config).toEqual({ Cmd: ["sh"] });

    const listing = await tarListing(content.path(image.layers[0]!.digest));
    expect(listing.find((l) => l.endsWith(" tmp/"))).toMatch(/^drwxrwxrwt 0\/0 /);
    expect(listing.filter((l) => l.startsWith("l")).length).toBe(applets.length);

    const archive = join(dir, "busybox.tar");
    await writeOciLayout(image, content, { dest: archive, tar: true, names: ["busybox:latest"] });
    const layout = join(dir, "layout");
    await mkdir(layout);
    await execFileAsync("tar", ["-xf", archive, "-C", layout]);
    const bundle = join(dir, "bundle");
    await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${layout}:latest`, bundle]);
    const unpacked = join(bundle, "rootfs");
    expect(await readlink(join(unpacked, "bin/sh"))).toBe("busybox");
    expect((await lstat(join(unpacked, "tmp"))).mode & 0o7777).toBe(0o1777);
    expect(await readFile(join(unpacked, "etc/passwd"), "utf8")).toContain("nobody:x:65534");
    const run = await execFileAsync("chroot", [unpacked, "/bin/sh", "-c", "echo ran; id -un"]);
    expect(run.stdout).toBe("ran\nroot\n");
  });

  it("gives the same image for the same tree and epoch", async () => {
    const rootfs = join(dir, "rootfs");
    await makeBusyboxRootfs(rootfs);
    const a = await importRootfs({ source: rootfs, name: "a", content, images, platform, epoch: 100 });
    const b = await importRootfs({ source: rootfs, name: "b", content, images, platform, epoch: 100 });
    expect(b.manifest.digest).toBe(a.manifest.digest);
    expect(a.spec.created).toBe("1970-01-01T00:01:40Z");
  });

  it("uses a tar file as the layer as it is", async () => {
    const bytes = await fixtureTar([{ kind: "file", path: "hello", content: "hi\n" }]);
    const file = join(dir, "rootfs.tar");
    await writeFile(file, bytes);
    const image = await importRootfs({ source: file, name: "example.com/x:1", content, images, platform });
    const { sha256 } = await import("../solver/llb/index.js");
    expect(image.spec.rootfs.diff_ids).toEqual([sha256(bytes)]);
    const { stdout } = await execFileAsync("skopeo", ["inspect", "--config", `oci:${content.root}:example.com/x:1`]);
    expect((JSON.parse(stdout) as ImageSpec).rootfs.diff_ids).toEqual([sha256(bytes)]);
  });

  it("refuses a source that does not exist with a stable code", async () => {
    await expect(importRootfs({ source: join(dir, "missing"), name: "x", content, images, platform })).rejects.toMatchObject({ code: "KILN_IMPORT_INVALID_SOURCE" });
  });
});

describe("packDirectory()", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-pack-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes hard links as link entries, sorted names, and numeric owners", async () => {
    await mkdir(join(dir, "t/b"), { recursive: true });
    await writeFile(join(dir, "t/b/file"), "x");
    await execFileAsync("ln", [join(dir, "t/b/file"), join(dir, "t/a-link")]);
    await execFileAsync("chown", ["1234:5678", join(dir, "t/b/file")]);
    const out = join(dir, "out.tar");
    const { createWriteStream } = await import("node:fs");
    const { pipeline } = await import("node:stream/promises");
    await pipeline(packDirectory(join(dir, "t")), createWriteStream(out));
    const { stdout } = await execFileAsync("tar", ["-tvf", out, "--numeric-owner"]);
    const lines = stdout.split("\n").filter((l) => l !== "");
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(" "))).toEqual(["a-link", "b/", "b/file link to a-link"]);
    expect(lines[0]).toMatch(/^-rw-r--r-- 1234\/5678 /);
  });
});
