import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";
import { runcRun, skopeoInspect, unpackOciArchive } from "../harness/oci-tools.js";

const registry = inject("registry");

const events = progressEvents;

describe("a two-stage Dockerfile becomes a runnable OCI image", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("examples/hello builds from a registry base, and skopeo, umoci and runc accept the result", async () => {
    const out = join(scratch.dir, "hello.tar");
    const run = await runKiln(scratch.root, [
      "build", "--progress", "plain",
      "--build-arg", `BASE=${registry}/busybox:latest`,
      "-f", "examples/hello/Dockerfile",
      "--output", `type=oci,dest=${out}`,
      "examples/hello",
    ]);
    expect(run.stderr).toContain("[builder 4/4] RUN echo");
    expect(run.code, run.stderr).toBe(0);

    const inspected = await skopeoInspect(`oci-archive:${out}`);
    expect(inspected["Architecture"]).toBeTypeOf("string");
    const config = await skopeoInspect(`oci-archive:${out}`, { config: true });
    expect((config["config"] as { Cmd: string[] }).Cmd).toEqual(["/bin/sh", "-c", 'cat /hello/banner "$GREETING"']);

    const bundle = await unpackOciArchive(out, join(scratch.dir, "unpacked"));
    const { stdout } = await runcRun(bundle, scratch.dir, "kiln-test-hello");
    expect(stdout).toBe("built by kiln\nHELLO FROM THE BUILD CONTEXT\n");
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });

  test("the second identical build runs nothing and reports every step CACHED", async () => {
    const args = [
      "build", "--progress", "rawjson",
      "--build-arg", `BASE=${registry}/busybox:latest`,
      "-f", "examples/hello/Dockerfile",
      "--output", `type=oci,dest=${join(scratch.dir, "again.tar")}`,
      "examples/hello",
    ];
    const first = await runKiln(scratch.root, args);
    expect(first.code, first.stderr).toBe(0);
    const second = await runKiln(scratch.root, args);
    expect(second.code, second.stderr).toBe(0);
    const solved = events(second.stderr).filter((e) => "name" in e && !e.name.startsWith("exporting") && !e.name.startsWith("naming"));
    const cached = solved.filter((e) => e.type === "vertex.cached").map((e) => ("name" in e ? e.name : ""));
    expect(solved.filter((e) => e.type === "vertex.started")).toEqual([]);
    expect(cached).toEqual(expect.arrayContaining([expect.stringMatching(/RUN echo/), expect.stringMatching(/COPY --from=builder/)]));

    const plain = await runKiln(scratch.root, args.map((a) => (a === "rawjson" ? "plain" : a)));
    expect(plain.stderr).toMatch(/#\d+ \[builder 4\/4\] RUN echo[^\n]*\n#\d+ CACHED/);
  });

  test("two independent stages run at the same time", async () => {
    const context = await scratch.context("parallel", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS left`,
        "RUN sleep 2 && echo left > /left",
        `FROM ${registry}/busybox:latest AS right`,
        "RUN sleep 2 && echo right > /right",
        `FROM ${registry}/busybox:latest`,
        "COPY --from=left /left /",
        "COPY --from=right /right /",
        "",
      ].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "rawjson", context]);
    expect(run.code, run.stderr).toBe(0);
    const list = events(run.stderr);
    const started = (name: string): number => list.findIndex((e) => e.type === "vertex.started" && e.name.includes(name));
    const completed = (name: string): number => list.findIndex((e) => e.type === "vertex.completed" && e.name.includes(name));
    const leftStart = started("echo left");
    const rightStart = started("echo right");
    expect(leftStart).toBeGreaterThanOrEqual(0);
    expect(rightStart).toBeGreaterThanOrEqual(0);
    // Both sleeps had begun before either finished: they overlapped.
    expect(Math.max(leftStart, rightStart)).toBeLessThan(Math.min(completed("echo left"), completed("echo right")));
  });
});
