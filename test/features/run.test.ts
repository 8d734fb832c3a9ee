import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, runKiln, type Scratch } from "../harness/kiln.js";
import { unpackOciArchive } from "../harness/oci-tools.js";

const registry = inject("registry");

describe("RUN", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("deleting a file of the base image produces a whiteout: the unpacked image lacks it", async () => {
    const context = await scratch.context("whiteout", {
      Dockerfile: `FROM ${registry}/busybox:latest\nRUN rm /bin/vi && rm -r /var/tmp && test ! -e /bin/vi\n`,
    });
    const out = join(scratch.dir, "whiteout.tar");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--output", `type=oci,dest=${out}`, context]);
    expect(run.code, run.stderr).toBe(0);
    const bundle = await unpackOciArchive(out, join(scratch.dir, "whiteout-unpacked"));
    expect(existsSync(join(bundle, "rootfs/bin/sh"))).toBe(true);
    expect(existsSync(join(bundle, "rootfs/bin/vi"))).toBe(false);
    expect(existsSync(join(bundle, "rootfs/var/tmp"))).toBe(false);
    expect(existsSync(join(bundle, "rootfs/var"))).toBe(true);
  });

  test("a failing command fails the build with its step, command, exit code and last output", async () => {
    const context = await scratch.context("failing", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "WORKDIR /work",
        "RUN echo preparing && echo 'something broke' >&2 && exit 3",
        'CMD ["true"]',
        "",
      ].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("Dockerfile:3");
    expect(run.stderr).toContain(">>> RUN echo preparing");
    expect(run.stderr).toContain("something broke");
    expect(run.stderr).toMatch(/\[3\/3\] RUN echo preparing/);
    expect(run.stderr).toMatch(/did not complete successfully: exit code: 3/);
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });
});
