import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("Dockerfile errors", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("a syntax error names the file and line, with the line framed, and exits 1", async () => {
    const context = await scratch.context("syntax", {
      Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo fine\nCOPPY a b\n`,
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("Dockerfile:3");
    expect(run.stderr).toContain(">>> COPPY a b");
    expect(run.stderr).toMatch(/error: .*COPPY/i);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  test("an unknown flag on the command line is a usage error (exit 2)", async () => {
    const run = await runKiln(scratch.root, ["build", "--no-such-flag", "."]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--no-such-flag");
  });

  test("a missing Dockerfile says which path it looked for", async () => {
    const context = await scratch.context("empty", {});
    const run = await runKiln(scratch.root, ["build", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`Cannot read Dockerfile "${context}/Dockerfile": no such file`);
  });
});
