import { describe, expect, test } from "vitest";
import { parseBuildContext } from "./build-context.js";

describe("parseBuildContext()", () => {
  test("reads a directory, relative to the working directory", () => {
    expect(parseBuildContext("src=./lib", "/work")).toEqual(["src", { kind: "local", dir: "/work/lib" }]);
  });

  test("reads docker-image:// and oci-layout:// with an optional digest", () => {
    expect(parseBuildContext("alpine=docker-image://busybox:latest", "/")).toEqual(["alpine", { kind: "image", ref: "busybox:latest" }]);
    const digest = `sha256:${"a".repeat(64)}`;
    expect(parseBuildContext(`base=oci-layout://out/layout@${digest}`, "/w")).toEqual(["base", { kind: "oci-layout", path: "/w/out/layout", digest }]);
  });

  test("refuses a missing value, an unknown scheme and the main context's name", () => {
    expect(() => parseBuildContext("name", "/")).toThrow(/expected NAME=DIR/);
    expect(() => parseBuildContext("x=git://example/repo", "/")).toThrow(/not "git:\/\/"/);
    expect(() => parseBuildContext("context=/tmp", "/")).toThrow(/main build context/);
  });
});
