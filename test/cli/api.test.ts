import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { build, type ProgressEvent } from "../../cli/api.js";
import { createScratch, mountsUnder, REPO, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/** The containers runc knows under a state root. */
function runcContainers(root: string): string[] {
  return execFileSync("runc", ["--root", join(root, "executor/runc"), "list", "-q"], { encoding: "utf8" }).split("\n").filter((l) => l !== "");
}

describe("the API: import { build } from \"kiln\"", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("the example builds through the package's main export and gets the digest, config and metadata", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(REPO, "examples/api/build.mjs"), join(REPO, "examples/hello"), "--base", `${registry}/busybox:latest`], {
      env: { ...process.env, KILN_ROOT: scratch.root },
    });
    const printed = JSON.parse(stdout) as { digest: string; cmd: string[]; labels: Record<string, string>; build: string };
    expect(printed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(printed.cmd).toEqual(["/bin/sh", "-c", 'cat /hello/banner "$GREETING"']);
    expect(printed.labels).toEqual({ "org.example.built-by": "kiln-api-example" });
    expect(printed.build).toMatch(/^\d{8}T\d{6}Z-/);
  });

  test("yields typed progress events and resolves to the result", async () => {
    const context = await scratch.context("events", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo from-the-api\nCMD ["sh"]\n` });
    const handle = build({ root: scratch.root, context, tags: ["api:events"] });
    const events: ProgressEvent[] = [];
    for await (const event of handle.events) events.push(event);
    const result = await handle;
    expect(result.digest).toMatch(/^sha256:/);
    expect(result.config?.config?.Cmd).toEqual(["sh"]);
    expect(events.some((e) => e.type === "vertex.log" && e.data.includes("from-the-api"))).toBe(true);
    expect(events.some((e) => e.type === "vertex.completed" && e.name.includes("RUN echo from-the-api"))).toBe(true);
  });

  test("aborting the signal during a RUN stops its container and leaves no container and no mount", async () => {
    const context = await scratch.context("abort", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo started && sleep 30\n` });
    const controller = new AbortController();
    const handle = build({ root: scratch.root, context, signal: controller.signal });
    const outcome = handle.result.then(() => "built", (error: unknown) => error);
    // Wait until the RUN's process has printed, so the container certainly exists.
    for await (const event of handle.events) {
      if (event.type === "vertex.log" && event.data.includes("started")) break;
    }
    expect(runcContainers(scratch.root)).toHaveLength(1);
    controller.abort(new Error("stop it"));
    const error = await outcome;
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/stop it|abort|cancel/i);
    expect(runcContainers(scratch.root)).toEqual([]);
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });
});
