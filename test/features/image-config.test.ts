import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";
import { runcRun, skopeoInspect, unpackOciArchive } from "../harness/oci-tools.js";

const registry = inject("registry");

describe("FROM scratch, JSON-form RUN, ARG, ENV, WORKDIR, ENTRYPOINT and CMD", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("reach the process and the image config as docker build sets them", async () => {
    const context = await scratch.context("config", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS tools`,
        "ARG NAME=world",
        "ENV GREETING=hello",
        'RUN ["/bin/sh", "-c", "echo \\"$GREETING $NAME\\" > /msg"]',
        "FROM scratch",
        "COPY --from=tools /bin/busybox /bin/busybox",
        "COPY --from=tools /msg /data/msg",
        "WORKDIR /data",
        "ENV MODE=production",
        'ENTRYPOINT ["/bin/busybox", "cat"]',
        'CMD ["msg"]',
        "",
      ].join("\n"),
    });
    const out = join(scratch.dir, "config.tar");
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--build-arg", "NAME=kiln", "--output", `type=oci,dest=${out}`, context]);
    expect(run.code, run.stderr).toBe(0);

    const config = (await skopeoInspect(`oci-archive:${out}`, { config: true })) as {
      config: { Entrypoint: string[]; Cmd: string[]; WorkingDir: string; Env: string[] };
      history: { created_by: string; empty_layer?: boolean }[];
      rootfs: { diff_ids: string[] };
    };
    expect(config.config.Entrypoint).toEqual(["/bin/busybox", "cat"]);
    expect(config.config.Cmd).toEqual(["msg"]);
    expect(config.config.WorkingDir).toBe("/data");
    expect(config.config.Env).toContain("MODE=production");
    expect(config.config.Env).not.toContain("GREETING=hello");
    // Two layers from scratch, one per COPY: WORKDIR of a directory that exists changes nothing,
    // and an empty diff is dropped (as BuildKit does), its history line marked empty.
    expect(config.rootfs.diff_ids).toHaveLength(2);
    expect(config.history.filter((h) => h.empty_layer !== true).map((h) => h.created_by)).toEqual([
      expect.stringMatching(/^COPY \/bin\/busybox/),
      expect.stringMatching(/^COPY \/msg/),
    ]);
    expect(config.history.find((h) => h.created_by.startsWith("WORKDIR"))?.empty_layer).toBe(true);

    const bundle = await unpackOciArchive(out, join(scratch.dir, "config-unpacked"));
    const { stdout } = await runcRun(bundle, scratch.dir, "kiln-test-config");
    expect(stdout).toBe("hello kiln\n");
  });
});
