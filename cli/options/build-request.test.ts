import { describe, expect, test } from "vitest";
import { parseBuildArgs } from "./build-request.js";

describe("parseBuildArgs()", () => {
  test("answers --cache-to and --cache-from with a clear usage error until cache export exists", () => {
    expect(() => parseBuildArgs(["--cache-to", "type=local,dest=c", "."])).toThrow(/does not support it yet/);
    expect(() => parseBuildArgs(["--cache-from", "type=local,src=c", "."])).toThrow(/--cache-to\/--cache-from/);
  });

  test("takes docker build's flags into build options", () => {
    const { options, progress } = parseBuildArgs(["-f", "x/Dockerfile", "-t", "a:1", "--build-arg", "K=V", "--target", "t", "--progress", "plain", "ctx"]);
    expect(progress).toBe("plain");
    expect(options).toMatchObject({ context: "ctx", file: "x/Dockerfile", tags: ["a:1"], buildArgs: { K: "V" }, target: "t" });
  });
});
