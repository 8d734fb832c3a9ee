import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("a COPY source that is missing is explained", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  const build = async (name: string, files: Record<string, string>) => {
    const context = await scratch.context(name, files);
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    return { run, context };
  };

  test("a file excluded by .dockerignore names the file:line of the pattern, framed, and how to re-include it", async () => {
    const { run } = await build("ignored", {
      "config.yaml": "a: 1\n",
      ".dockerignore": "# build outputs\nnode_modules\n*.yaml\n",
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY config.yaml /etc/app/\n`,
    });
    expect(run.stderr).toContain('Cannot copy "config.yaml": it is excluded from the build context by .dockerignore:3 ("*.yaml")');
    expect(run.stderr).toContain(".dockerignore:3\n");
    expect(run.stderr).toContain(">>> *.yaml");
    expect(run.stderr).toContain(">>> COPY config.yaml /etc/app/");
    expect(run.stderr).toContain('add the exception "!config.yaml"');
  });

  test("a typo names the closest existing path", async () => {
    const { run, context } = await build("typo", {
      "src/main.go": "package main\n",
      "src/util.go": "package main\n",
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY src/mian.go /app/\n`,
    });
    expect(run.stderr).toContain(`Cannot copy "src/mian.go": it is not in the build context (${context})`);
    expect(run.stderr).toContain('Did you mean "src/main.go"?');
    expect(run.stderr).toContain("Dockerfile:2");
  });

  test("a file in another directory of the context is suggested by its name", async () => {
    const { run } = await build("moved", {
      "cmd/server/main.go": "package main\n",
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY main.go /app/\n`,
    });
    expect(run.stderr).toContain('Did you mean "cmd/server/main.go"?');
  });

  test("a path with nothing like it is simply not in the context, with no suggestion", async () => {
    const { run } = await build("absent", {
      "README.md": "x\n",
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY package.json /app/\n`,
    });
    expect(run.stderr).toContain('Cannot copy "package.json": it is not in the build context');
    expect(run.stderr).not.toContain("Did you mean");
  });

  test("a path missing from a stage names the stage and its closest path", async () => {
    const { run } = await build("stage", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS builder`,
        "RUN mkdir /out && echo bin > /out/app",
        `FROM ${registry}/busybox:latest`,
        "COPY --from=builder /out/ap /usr/bin/app",
        "",
      ].join("\n"),
    });
    expect(run.stderr).toContain('Cannot copy "/out/ap": it does not exist in stage "builder"');
    expect(run.stderr).toContain('Did you mean "/out/app"?');
    expect(run.stderr).toContain(">>> COPY --from=builder /out/ap /usr/bin/app");
  });
});
