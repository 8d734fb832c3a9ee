import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/** The `CapEff:` mask of this test process: kiln (started by it, as root) holds the same set. */
function ownCapEff(): string {
  return /^CapEff:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "";
}

describe("RUN --security", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  const dockerfile = (security: string) =>
    [`FROM ${registry}/busybox:latest`, `RUN ${security}cat /proc/self/status | grep -E '^(CapEff|Seccomp):'`, ""].join("\n");

  test("a RUN runs with Docker's default capabilities under seccomp by default", async () => {
    const context = await scratch.context("sandbox", { Dockerfile: dockerfile("--security=sandbox ") });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--no-cache", context]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/CapEff:\s+00000000a80425fb/);
    expect(run.stderr).toMatch(/Seccomp:\s+2/);
  });

  test("RUN --security=insecure without --allow security.insecure fails before anything runs, naming the flag", async () => {
    const context = await scratch.context("denied", { Dockerfile: dockerfile("--security=insecure ") });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('needs the entitlement "security.insecure"');
    expect(run.stderr).toContain("--allow security.insecure");
    expect(run.stderr).not.toMatch(/CapEff:/);
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });

  test("RUN --security=insecure with --allow security.insecure gets every capability kiln holds and no seccomp", async () => {
    const context = await scratch.context("insecure", { Dockerfile: dockerfile("--security=insecure ") });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--allow", "security.insecure", context]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`CapEff:\t${ownCapEff()}`);
    expect(run.stderr).toMatch(/Seccomp:\s+0/);
  });

  test("an unknown entitlement is a usage error", async () => {
    const context = await scratch.context("unknown", { Dockerfile: dockerfile("") });
    const run = await runKiln(scratch.root, ["build", "--allow", "security.everything", context]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Cannot allow "security.everything": it is not an entitlement');
  });
});
