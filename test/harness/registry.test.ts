import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushOciLayout, startRegistry, type RunningRegistry } from "./registry.js";
import { writeTestImage } from "./test-image.js";

const execFileAsync = promisify(execFile);

describe("startRegistry()", () => {
  let registry: RunningRegistry;
  let dir: string;
  beforeAll(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), "kiln-harness-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves an image pushed with pushOciLayout() that skopeo reads back with the same digest", async () => {
    const image = await writeTestImage(join(dir, "layout"), { ref: "harness:v1" });
    await pushOciLayout(join(dir, "layout"), "harness:v1", registry.host);
    const { stdout } = await execFileAsync("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/harness:v1`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(image.top.digest);
  });

  it("stop() ends the registry so its port no longer answers", async () => {
    const other = await startRegistry();
    await other.stop();
    await expect(fetch(`http://${other.host}/v2/`)).rejects.toThrow();
  });
});
