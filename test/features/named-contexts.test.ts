import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");
const fixtureContent = inject("fixtureContent");
const execFileAsync = promisify(execFile);

describe("named build contexts (--build-context)", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("a directory context is read by COPY --from=NAME and by FROM NAME", async () => {
    const extra = await scratch.context("extra-dir", { "lib/util.txt": "from the extra context\n" });
    const context = await scratch.context("dir", {
      "main.txt": "from the main context\n",
      Dockerfile: [
        "FROM shared AS files",
        `FROM ${registry}/busybox:latest`,
        "COPY main.txt /main.txt",
        "COPY --from=shared /lib/util.txt /util.txt",
        "COPY --from=files /lib /files-lib",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "dir", context, ["--build-context", `shared=${extra}`]);
    expect(await image.read("main.txt")).toBe("from the main context\n");
    expect(await image.read("util.txt")).toBe("from the extra context\n");
    expect(await image.read("files-lib/util.txt")).toBe("from the extra context\n");
  });

  test("a docker-image:// context replaces the image a FROM names", async () => {
    const context = await scratch.context("image", {
      Dockerfile: ["FROM alpine:latest", "RUN echo ran on the replacement > /proof", ""].join("\n"),
    });
    const image = await buildImage(scratch, "image", context, ["--build-context", `alpine=docker-image://${registry}/busybox:latest`]);
    expect(await image.read("proof")).toBe("ran on the replacement\n");
  });

  test("a context with a stage's name replaces the stage: its instructions are not run", async () => {
    const replacement = await scratch.context("replacement", { "out/app": "prebuilt\n" });
    const context = await scratch.context("stage", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS builder`,
        "RUN echo the builder stage ran && exit 9",
        `FROM ${registry}/busybox:latest`,
        "COPY --from=builder /out/app /app",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "stage", context, ["--build-context", `builder=${replacement}`]);
    expect(await image.read("app")).toBe("prebuilt\n");
    expect(image.run.stderr).not.toContain("the builder stage ran");
  });

  test("an oci-layout:// context is read from the layout without a registry", async () => {
    const layout = join(scratch.dir, "layout");
    await execFileAsync("skopeo", ["copy", "--quiet", `oci:${fixtureContent}:docker.io/library/busybox:latest`, `oci:${layout}:latest`]);
    const context = await scratch.context("layout", {
      Dockerfile: ["FROM base", "RUN echo from the layout > /proof", ""].join("\n"),
    });
    const image = await buildImage(scratch, "layout", context, ["--build-context", `base=oci-layout://${layout}`]);
    expect(await image.read("proof")).toBe("from the layout\n");
  });

  test("a malformed --build-context is a usage error (exit 2)", async () => {
    const run = await runKiln(scratch.root, ["build", "--build-context", "nameonly", "."]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Cannot use --build-context "nameonly"');
  });
});
