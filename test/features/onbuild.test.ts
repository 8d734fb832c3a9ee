import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("ONBUILD", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("triggers stored in a base image run in the build that uses it, before its own instructions", async () => {
    const base = await scratch.context("base", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN echo base > /base",
        "ONBUILD COPY trigger.txt /from-trigger",
        "ONBUILD RUN echo ran > /trigger-ran",
        "",
      ].join("\n"),
    });
    const stored = await runKiln(scratch.root, ["build", "--progress", "plain", "-t", "kiln-test/onbuild-base:1", base]);
    expect(stored.code, stored.stderr).toBe(0);

    const child = await scratch.context("child", {
      "trigger.txt": "copied by the trigger\n",
      Dockerfile: ["FROM kiln-test/onbuild-base:1", "RUN cat /trigger-ran > /seen-by-child", ""].join("\n"),
    });
    const image = await buildImage(scratch, "child", child);
    expect(await image.read("base")).toBe("base\n");
    expect(await image.read("from-trigger")).toBe("copied by the trigger\n");
    expect(await image.read("seen-by-child")).toBe("ran\n");
    expect(image.run.stderr).toMatch(/RUN echo ran > \/trigger-ran/);
    // Triggers run once: the child's own config does not carry them on.
    expect((image.spec["config"] as { OnBuild?: string[] }).OnBuild ?? []).toEqual([]);
  });

  test("ONBUILD in a stage is recorded in the image config and not run in that build", async () => {
    const context = await scratch.context("record", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "ONBUILD RUN touch /never", ""].join("\n"),
    });
    const image = await buildImage(scratch, "record", context);
    expect((image.spec["config"] as { OnBuild: string[] }).OnBuild).toEqual(["RUN touch /never"]);
    await expect(image.read("never")).rejects.toThrow();
  });
});
