import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe(".dockerignore", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  const files = {
    "app/main.js": "main",
    "app/debug.log": "log",
    "app/keep.log": "keep",
    "secrets/key": "secret",
    "docs/a.md": "a",
    "docs/deep/b.md": "b",
    "README.md": "readme",
  };

  test("patterns exclude files from COPY . and a later ! exception re-includes one", async () => {
    const context = await scratch.context("ignore", {
      ...files,
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY . /ctx/\n`,
      ".dockerignore": ["# comments are ignored", "secrets", "**/*.log", "!app/keep.log", "/docs/**/*.md", "!docs/a.md", "Dockerfile", ""].join("\n"),
    });
    const image = await buildImage(scratch, "ignore", context);
    const has = (p: string): boolean => existsSync(join(image.rootfs, "ctx", p));
    expect(has("app/main.js")).toBe(true);
    expect(has("app/debug.log")).toBe(false);
    expect(has("app/keep.log")).toBe(true);
    expect(has("secrets")).toBe(false);
    expect(has("docs/a.md")).toBe(true);
    expect(has("docs/deep/b.md")).toBe(false);
    expect(has("README.md")).toBe(true);
    expect(has("Dockerfile")).toBe(false);
    // .dockerignore itself is sent unless excluded, as in BuildKit.
    expect(has(".dockerignore")).toBe(true);
  });

  test("the last matching pattern wins", async () => {
    const context = await scratch.context("last-wins", {
      ...files,
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY . /ctx/\n`,
      ".dockerignore": ["!README.md", "*.md", ""].join("\n"),
    });
    const image = await buildImage(scratch, "last-wins", context);
    expect(existsSync(join(image.rootfs, "ctx/README.md"))).toBe(false);
    expect(existsSync(join(image.rootfs, "ctx/app/main.js"))).toBe(true);
  });

  test("<Dockerfile>.dockerignore beside a named Dockerfile wins over the context's .dockerignore", async () => {
    const context = await scratch.context("per-dockerfile", {
      ...files,
      "build/app.Dockerfile": `FROM ${registry}/busybox:latest\nCOPY . /ctx/\n`,
      "build/app.Dockerfile.dockerignore": "docs\n",
      ".dockerignore": "app\n",
    });
    const image = await buildImage(scratch, "per-dockerfile", context, ["-f", join(context, "build/app.Dockerfile")]);
    expect(existsSync(join(image.rootfs, "ctx/docs"))).toBe(false);
    expect(existsSync(join(image.rootfs, "ctx/app/main.js"))).toBe(true);
  });
});
