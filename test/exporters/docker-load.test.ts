import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { startDockerd, type PrivateDockerd } from "../harness/dockerd.js";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("type=docker output in Debian's docker daemon", () => {
  let scratch: Scratch;
  let dockerd: PrivateDockerd;
  beforeAll(async () => {
    scratch = await createScratch();
    dockerd = await startDockerd();
  });
  afterAll(async () => {
    await dockerd?.stop();
    await scratch?.dispose();
  });

  test("docker load accepts the archive and docker run prints what the CMD prints, with the files inside", async () => {
    const context = await scratch.context("app", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN mkdir /app && echo 'built by kiln' > /app/msg.txt",
        "ENV GREETING=hello",
        'CMD ["sh", "-c", "echo $GREETING; cat /app/msg.txt"]',
        "",
      ].join("\n"),
    });
    const archive = join(scratch.dir, "app.tar");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=docker,dest=${archive},name=kiln-test/app:v1`, context]);
    expect(run.code, run.stderr).toBe(0);
    const loaded = await dockerd.docker(["load", "-i", archive]);
    expect(loaded).toContain("Loaded image: kiln-test/app:v1");
    const output = await dockerd.docker(["run", "--rm", "--network=none", "kiln-test/app:v1"]);
    expect(output).toBe("hello\nbuilt by kiln\n");
    const listed = await dockerd.docker(["run", "--rm", "--network=none", "kiln-test/app:v1", "ls", "/bin/busybox"]);
    expect(listed.trim()).toBe("/bin/busybox");
  });
});
