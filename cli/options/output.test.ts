import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseOutput } from "./output.js";
import { UsageError } from "./usage-error.js";

describe("parseOutput()", () => {
  it("reads a bare directory as a local output and a bare dash as a tar on standard output", () => {
    expect(parseOutput("out")).toEqual({ type: "local", dest: resolve("out") });
    expect(parseOutput("-")).toEqual({ type: "tar", dest: "-" });
  });

  it("reads push and push-by-digest of an image output, and type=registry as a pushed image", () => {
    expect(parseOutput("type=image,name=r:5000/a:v1,push=true,push-by-digest=true")).toEqual({ type: "image", names: ["r:5000/a:v1"], push: true, pushByDigest: true });
    expect(parseOutput("type=registry,name=r:5000/a")).toEqual({ type: "image", names: ["r:5000/a"], push: true, pushByDigest: false });
  });

  it("refuses a push without a name and a local output without dest", () => {
    expect(() => parseOutput("type=image,push=true")).toThrow(UsageError);
    expect(() => parseOutput("type=local")).toThrow(/needs dest=DIR/);
  });

  it("keeps tar=false of an OCI output and a dash as the tar output's destination", () => {
    expect(parseOutput("type=oci,dest=d,tar=false")).toEqual({ type: "oci", dest: resolve("d"), tar: false, names: [] });
    expect(parseOutput("type=tar,dest=-")).toEqual({ type: "tar", dest: "-" });
  });
});
