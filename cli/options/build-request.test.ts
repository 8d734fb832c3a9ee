import { describe, expect, test } from "vitest";
import { parseBuildArgs } from "./build-request.js";

describe("parseBuildArgs()", () => {
  test("takes buildctl's --export-cache/--import-cache as docker's --cache-to/--cache-from", () => {
    const docker = parseBuildArgs(["--cache-to", "type=local,dest=c,mode=max", "--cache-from", "type=local,src=c", "."]);
    const buildctl = parseBuildArgs(["--export-cache", "type=local,dest=c,mode=max", "--import-cache", "type=local,src=c", "."]);
    expect(docker.options).toMatchObject({ cacheTo: ["type=local,dest=c,mode=max"], cacheFrom: ["type=local,src=c"] });
    expect(buildctl.options).toEqual(docker.options);
  });

  test("takes docker build's flags into build options", () => {
    const { options, progress } = parseBuildArgs(["-f", "x/Dockerfile", "-t", "a:1", "--build-arg", "K=V", "--target", "t", "--progress", "plain", "ctx"]);
    expect(progress).toBe("plain");
    expect(options).toMatchObject({ context: "ctx", file: "x/Dockerfile", tags: ["a:1"], buildArgs: { K: "V" }, target: "t" });
  });

  test("takes --explain-cache, and leaves it out when not given", () => {
    expect(parseBuildArgs(["--explain-cache", "ctx"]).options).toMatchObject({ explainCache: true });
    expect(parseBuildArgs(["ctx"]).options).not.toHaveProperty("explainCache");
  });
});
