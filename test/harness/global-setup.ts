import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { importRootfs } from "../../exporter/index.js";
import { defaultPlatform } from "../../solver/llb/index.js";
import { ContentStore } from "../../worker/content/content-store.js";
import { LocalImages } from "../../worker/content/image-index.js";
import { startRegistry } from "./registry.js";
import { assertSystemReady } from "./system.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A busybox root filesystem directory (scripts/make-busybox-rootfs.sh). */
    busyboxRootfs: string;
    /** A content store (an OCI layout) holding `docker.io/library/busybox:latest`. */
    fixtureContent: string;
    /** `127.0.0.1:PORT` of a real docker-registry serving `busybox:latest`. */
    registry: string;
  }
}

const REPO = resolve(import.meta.dirname, "../..");

/**
 * Once per test run: check the machine, make the busybox base image from Debian's busybox-static,
 * and start one real registry on a loopback port with busybox pushed to it (by skopeo, a client
 * that is not kiln's).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  assertSystemReady();
  const dir = await mkdtemp(join(tmpdir(), "kiln-fixtures-"));
  const rootfs = join(dir, "busybox-rootfs");
  execFileSync("bash", [join(REPO, "scripts/make-busybox-rootfs.sh"), rootfs], { stdio: "inherit" });
  const contentDir = join(dir, "content");
  const content = await ContentStore.open(contentDir);
  await importRootfs({ source: rootfs, name: "busybox:latest", content, images: new LocalImages(contentDir), platform: defaultPlatform() });
  const registry = await startRegistry();
  execFileSync("skopeo", [
    "copy", "--quiet", "--dest-tls-verify=false",
    `oci:${contentDir}:docker.io/library/busybox:latest`,
    `docker://${registry.host}/busybox:latest`,
  ], { stdio: "inherit" });
  project.provide("busyboxRootfs", rootfs);
  project.provide("fixtureContent", contentDir);
  project.provide("registry", registry.host);
  return async () => {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
