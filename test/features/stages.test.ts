import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("stages and --target", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  const dockerfile = [
    `FROM ${registry}/busybox:latest AS base`,
    "RUN echo base > /base",
    "FROM base AS broken",
    "RUN echo this stage fails && exit 3",
    "FROM base AS Tools",
    "RUN echo tools > /tools",
    "FROM base",
    "COPY --from=tools /tools /copied-tools",
    "COPY --from=0 /base /copied-base",
    "",
  ].join("\n");

  test("a stage that would fail but is not needed does not break the build", async () => {
    const context = await scratch.context("skipped", { Dockerfile: dockerfile });
    const image = await buildImage(scratch, "skipped", context);
    expect(await image.read("copied-tools")).toBe("tools\n");
    expect(await image.read("copied-base")).toBe("base\n");
    expect(image.run.stderr).not.toContain("this stage fails");
  });

  test("--target builds the named stage (names are case-insensitive) and only what it needs", async () => {
    const context = await scratch.context("target", { Dockerfile: dockerfile });
    const image = await buildImage(scratch, "target", context, ["--target", "TOOLS"]);
    expect(await image.read("tools")).toBe("tools\n");
    await expect(image.read("copied-tools")).rejects.toThrow();
    expect(image.run.stderr).not.toContain("this stage fails");
  });

  test("--target of the failing stage fails with its exit code and the framed line", async () => {
    const context = await scratch.context("target-broken", { Dockerfile: dockerfile });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--target", "broken", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(">>> RUN echo this stage fails && exit 3");
    expect(run.stderr).toMatch(/exit(ed)? (with )?code:? 3/);
  });

  test("an unknown --target names the stages with a suggestion", async () => {
    const context = await scratch.context("target-unknown", { Dockerfile: dockerfile });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--target", "tols", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Cannot build target "tols"');
    expect(run.stderr).toContain('Did you mean "tools"?');
  });

  test("COPY --from a stage defined later is an error naming the line", async () => {
    const context = await scratch.context("order", {
      Dockerfile: [`FROM ${registry}/busybox:latest AS first`, "COPY --from=second /x /x", `FROM ${registry}/busybox:latest AS second`, ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--target", "first", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("Dockerfile:2");
    expect(run.stderr).toContain('Cannot copy from stage "second"');
  });
});
