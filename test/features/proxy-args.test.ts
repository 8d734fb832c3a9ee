import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/**
 * BuildKit's proxy args: HTTP_PROXY and friends given with --build-arg reach every RUN without an
 * ARG, but stay out of the image history and of the RUN's cache key unless an ARG declares them.
 */
describe("proxy build args", () => {
  let scratch: Scratch;
  let context: string;
  const dockerfile = [`FROM ${registry}/busybox:latest`, "RUN env | grep -i _proxy= | sort > /proxy", ""].join("\n");

  beforeAll(async () => {
    scratch = await createScratch();
    context = await scratch.context("proxy", { Dockerfile: dockerfile });
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("reach RUN's environment in both spellings without an ARG, and stay out of history, Env and the unused-args warning", async () => {
    const image = await buildImage(scratch, "proxy", context, ["--build-arg", "HTTP_PROXY=http://proxy.invalid:3128", "--build-arg", "no_proxy=localhost"]);
    expect(await image.read("proxy")).toBe("HTTP_PROXY=http://proxy.invalid:3128\nNO_PROXY=localhost\nhttp_proxy=http://proxy.invalid:3128\nno_proxy=localhost\n");
    const history = image.spec["history"] as { created_by: string }[];
    expect(history.map((h) => h.created_by)).toContain("RUN /bin/sh -c env | grep -i _proxy= | sort > /proxy # buildkit");
    expect(JSON.stringify(history)).not.toMatch(/proxy\.invalid/u);
    expect(JSON.stringify(image.spec["config"])).not.toMatch(/proxy\.invalid/u);
    expect(image.run.stderr).not.toContain("were not consumed");
  });

  test("a changed proxy does not invalidate the RUN, while an unused --build-arg is reported as not consumed", async () => {
    const first = await runKiln(scratch.root, ["build", "--progress", "rawjson", "--build-arg", "HTTP_PROXY=http://one.invalid:1", context]);
    expect(first.code, first.stderr).toBe(0);
    const again = await runKiln(scratch.root, ["build", "--progress", "rawjson", "--build-arg", "HTTP_PROXY=http://two.invalid:2", "--build-arg", "NOBODY=1", context]);
    expect(again.code, again.stderr).toBe(0);
    const events = progressEvents(again.stderr);
    const run = events.filter((e) => "name" in e && e.name.includes("RUN env"));
    expect(run.map((e) => e.type)).toContain("vertex.cached");
    expect(run.map((e) => e.type)).not.toContain("vertex.started");
    const warnings = events.filter((e) => e.type === "warning").map((e) => (e.type === "warning" ? e.message : ""));
    expect(warnings).toEqual(["One or more build-args [NOBODY] were not consumed"]);
  });
});
