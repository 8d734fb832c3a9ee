import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { buildImage } from "../harness/built-image.js";
import { createScratch, type Scratch } from "../harness/kiln.js";
import { defaultPlatform, formatPlatform } from "../../solver/llb/index.js";

const registry = inject("registry");

describe("ARG scoping", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("a global ARG is usable in FROM, and inside a stage only once re-declared", async () => {
    const context = await scratch.context("global", {
      Dockerfile: [
        "ARG REGISTRY=unused",
        "ARG VERSION=1.0",
        "FROM ${REGISTRY}/busybox:latest",
        'RUN echo "before=[$VERSION]" > /before',
        "ARG VERSION",
        'RUN echo "after=[$VERSION]" > /after',
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "global", context, ["--build-arg", `REGISTRY=${registry}`]);
    expect(await image.read("before")).toBe("before=[]\n");
    expect(await image.read("after")).toBe("after=[1.0]\n");
  });

  test("an ARG with a default in the stage, --build-arg overrides it, and ENV shadows ARG", async () => {
    const context = await scratch.context("override", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "ARG COLOR=red",
        "ARG SHAPE=circle",
        'RUN echo "$COLOR $SHAPE" > /args',
        "ENV SHAPE=square",
        'RUN echo "$SHAPE" > /shadowed',
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "override", context, ["--build-arg", "COLOR=blue", "--build-arg", "SHAPE=star"]);
    expect(await image.read("args")).toBe("blue star\n");
    // ENV SHAPE=square, after ARG SHAPE, wins over --build-arg SHAPE=star.
    expect(await image.read("shadowed")).toBe("square\n");
    // ARG values are not kept in the image's environment; ENV values are.
    const env = (image.spec["config"] as { Env: string[] }).Env;
    expect(env).toContain("SHAPE=square");
    expect(env.some((e) => e.startsWith("COLOR="))).toBe(false);
  });

  test("the predefined platform args have this machine's values once declared", async () => {
    const context = await scratch.context("platform", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "ARG TARGETPLATFORM",
        "ARG TARGETOS",
        "ARG TARGETARCH",
        "ARG BUILDPLATFORM",
        "ARG BUILDARCH",
        'RUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDPLATFORM $BUILDARCH" > /platform',
        'RUN echo "[$TARGETVARIANT]" > /undeclared',
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "platform", context);
    const here = defaultPlatform();
    const text = formatPlatform(here);
    expect(await image.read("platform")).toBe(`${text} ${here.os} ${here.architecture} ${text} ${here.architecture}\n`);
    expect(await image.read("undeclared")).toBe("[]\n");
  });

  test("a build arg shows in RUN history with its value, and the image env stays free of it", async () => {
    const context = await scratch.context("history", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "ARG MODE=debug", "RUN echo $MODE > /mode", ""].join("\n"),
    });
    const image = await buildImage(scratch, "history", context, ["--build-arg", "MODE=release"]);
    expect(await image.read("mode")).toBe("release\n");
    const history = image.spec["history"] as { created_by: string }[];
    expect(history.map((h) => h.created_by)).toContain("RUN |1 MODE=release /bin/sh -c echo $MODE > /mode # buildkit");
  });
});
