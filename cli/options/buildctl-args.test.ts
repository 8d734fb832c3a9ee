import { describe, expect, test } from "vitest";
import { parseBuildArgs } from "./build-request.js";
import { translateBuildctlArgs } from "./buildctl-args.js";

describe("translateBuildctlArgs()", () => {
  test("turns buildctl's locals and opts into docker build's flags", () => {
    expect(
      translateBuildctlArgs([
        "--frontend", "dockerfile.v0", "--local", "context=ctx", "--local", "dockerfile=df",
        "--opt", "filename=Build.Dockerfile", "--opt", "target=app", "--opt", "build-arg:A=1=2",
        "--opt", "label:team=core", "--opt", "context:base=docker-image://alpine", "--export-cache", "type=local,dest=c",
      ]),
    ).toEqual([
      "--file", "df/Build.Dockerfile", "--target", "app", "--build-arg", "A=1=2", "--label", "team=core",
      "--build-context", "base=docker-image://alpine", "--cache-to", "type=local,dest=c", "ctx",
    ]);
  });

  test("leaves docker-style argv untouched", () => {
    const argv = ["-f", "x/Dockerfile", "--build-arg", "A=1", "-t", "img", "."];
    expect(translateBuildctlArgs(argv)).toEqual(argv);
  });

  test("an empty no-cache opt means no cache at all, a list filters stages", () => {
    expect(translateBuildctlArgs(["--opt", "no-cache=", "--local", "context=."])).toEqual(["--no-cache", "."]);
    expect(translateBuildctlArgs(["--opt=no-cache=a,b", "--local=context=."])).toEqual(["--no-cache-filter", "a,b", "."]);
  });

  test("refuses a frontend other than dockerfile.v0 and an unknown opt, as usage errors", () => {
    expect(() => translateBuildctlArgs(["--frontend", "gateway.v0"])).toThrow(expect.objectContaining({ code: "KILN_USAGE" }));
    expect(() => translateBuildctlArgs(["--opt", "frobnicate=1"])).toThrow(/frobnicate/);
    expect(() => translateBuildctlArgs(["--local", "other=dir"])).toThrow(/--local "other"/);
  });
});

describe("parseBuildArgs()", () => {
  test("docker-style and buildctl-style flags give the same options", () => {
    const docker = parseBuildArgs(["-f", "df/Dockerfile", "--target", "t", "--build-arg", "K=V", "--label", "l=1", "--platform", "linux/amd64", "ctx"]);
    const buildctl = parseBuildArgs([
      "--frontend=dockerfile.v0", "--local", "context=ctx", "--local", "dockerfile=df", "--opt", "target=t",
      "--opt", "build-arg:K=V", "--opt", "label:l=1", "--opt", "platform=linux/amd64",
    ]);
    expect(buildctl).toEqual(docker);
  });

  test("reads --label, --network, --iidfile and --metadata-file", () => {
    const parsed = parseBuildArgs(["--label", "a=b", "--label", "c", "--network", "host", "--iidfile", "i", "--metadata-file", "m", "."]);
    expect(parsed.options.labels).toEqual({ a: "b", c: "" });
    expect(parsed.options.network).toBe("host");
    expect(parsed.iidfile).toBe("i");
    expect(parsed.metadataFile).toBe("m");
  });

  test("refuses an unknown network mode and an unknown progress mode", () => {
    expect(() => parseBuildArgs(["--network", "bridge", "."])).toThrow(/network "bridge"/);
    expect(() => parseBuildArgs(["--progress", "fancy", "."])).toThrow(/--progress "fancy"/);
  });
});
