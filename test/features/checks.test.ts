import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("build checks through kiln build", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("--check reports findings with rule and line, builds nothing, and exits 0 for warnings", async () => {
    const context = await scratch.context("warn", {
      Dockerfile: [`FROM ${registry}/busybox:latest AS Builder`, "RUN touch /built", "CMD echo hi", ""].join("\n"),
    });
    const out = join(scratch.dir, "warn.tar");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--check", "--output", `type=oci,dest=${out}`, context]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("StageNameCasing: Stage name 'Builder' should be lowercase (Dockerfile:1)");
    expect(run.stderr).toContain("JSONArgsRecommended: JSON arguments recommended for CMD");
    expect(run.stderr).not.toContain("RUN touch /built");
    expect(existsSync(out)).toBe(false);
  });

  test("--check exits 1 when # check=error=true makes a finding an error", async () => {
    const context = await scratch.context("error", {
      Dockerfile: ["# check=error=true", `FROM ${registry}/busybox:latest`, "MAINTAINER me", ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--check", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("MaintainerDeprecated");
    expect(run.stderr).toContain("Build checks failed");
  });

  test("a build with # check=error=true fails before running anything, framing the line", async () => {
    const context = await scratch.context("error-build", {
      Dockerfile: ["# check=error=true", `FROM ${registry}/busybox:latest`, "RUN touch /x", "MAINTAINER me", ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(">>> MAINTAINER me");
    expect(run.stderr).toContain('the build check "MaintainerDeprecated" failed');
  });

  test("# check=skip= silences a rule in a real build", async () => {
    const context = await scratch.context("skip", {
      Dockerfile: ["# check=skip=StageNameCasing", `FROM ${registry}/busybox:latest AS Builder`, "RUN true", ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toContain("StageNameCasing");
  });
});
