import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { parsePlatform } from "../solver/llb/index.js";
import { ruleUrl } from "./checks.js";
import { parseDockerfile } from "./dockerfile.js";
import { lowerDockerfile } from "./lower/index.js";
import { createSourceFile } from "./source-file.js";

const FIXTURES = resolve(import.meta.dirname, "../test/fixtures/checks");

interface Expected {
  readonly rule: string;
  readonly line: number;
  readonly message: string;
}

interface FindingOptions {
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly dockerignore?: string;
}

/** Lowers with a resolver that knows every image as an empty linux/amd64 one: checks need no registry. */
async function findings(text: string, checks: "apply" | "report" = "report", options: FindingOptions = {}) {
  const dockerfile = parseDockerfile(createSourceFile("Dockerfile", text));
  const platform = parsePlatform("linux/amd64");
  return lowerDockerfile(dockerfile, {
    platform,
    buildPlatform: platform,
    checks,
    ...(options.buildArgs === undefined ? {} : { buildArgs: options.buildArgs }),
    ...(options.dockerignore === undefined ? {} : { dockerignore: createSourceFile(".dockerignore", options.dockerignore) }),
    resolveImage: (ref) => Promise.resolve({ ref: `docker.io/library/${ref}:latest`, config: { architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [] } } }),
  });
}

/** A fixture file's text, or undefined when the fixture has none. */
function optionalFile(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

describe("build checks, one fixture folder per rule (test/fixtures/checks/<rule>: Dockerfile, expected.json, optional build-args.json and dockerignore)", () => {
  for (const rule of readdirSync(FIXTURES).sort()) {
    test(`${rule}: reports exactly the expected findings, with positions and the rule's URL`, async () => {
      const text = readFileSync(join(FIXTURES, rule, "Dockerfile"), "utf8");
      const expected = JSON.parse(readFileSync(join(FIXTURES, rule, "expected.json"), "utf8")) as Expected[];
      const args = optionalFile(join(FIXTURES, rule, "build-args.json"));
      const dockerignore = optionalFile(join(FIXTURES, rule, "dockerignore"));
      const lowered = await findings(text, "report", {
        ...(args === undefined ? {} : { buildArgs: JSON.parse(args) as Record<string, string> }),
        ...(dockerignore === undefined ? {} : { dockerignore }),
      });
      const got = lowered.warnings.map((w) => ({ rule: w.rule, line: w.ranges[0]?.start.line, message: w.message }));
      expect(got).toEqual(expected);
      for (const w of lowered.warnings) expect(w.url).toBe(ruleUrl(w.rule ?? ""));
    });
  }
});

describe("the # check directive", () => {
  test("skip= drops the named rules and keeps the others", async () => {
    const lowered = await findings("# check=skip=JSONArgsRecommended\nFROM busybox AS Base\nCMD echo hi\n");
    expect(lowered.warnings.map((w) => w.rule)).toEqual(["StageNameCasing"]);
  });

  test("error=true fails lowering with the rule and the framed ranges", async () => {
    await expect(findings("# check=error=true\nFROM busybox\nMAINTAINER me\n", "apply")).rejects.toMatchObject({
      code: "KILN_CHECK_FAILED",
      ranges: [{ start: { line: 3 } }],
    });
  });

  test("error=true in report mode (kiln build --check) returns the findings and marks them failed", async () => {
    const lowered = await findings("# check=error=true\nFROM busybox\nMAINTAINER me\n");
    expect(lowered.checkFailed).toBe(true);
    expect(lowered.warnings.map((w) => w.rule)).toEqual(["MaintainerDeprecated"]);
  });

  test("ruleUrl() is BuildKit's kebab-case address", () => {
    expect(ruleUrl("JSONArgsRecommended")).toBe("https://docs.docker.com/go/dockerfile/rule/json-args-recommended/");
    expect(ruleUrl("FromAsCasing")).toBe("https://docs.docker.com/go/dockerfile/rule/from-as-casing/");
  });
});

describe("checks that need expansion", () => {
  test("UndefinedVar is skipped with # check=skip=UndefinedVar and fails the build with error=true", async () => {
    const skipped = await findings("# check=skip=UndefinedVar\nFROM busybox\nENV A=$NOPE\n");
    expect(skipped.warnings).toEqual([]);
    await expect(findings("# check=error=true\nFROM busybox\nENV A=$NOPE\n", "apply")).rejects.toMatchObject({ code: "KILN_CHECK_FAILED", ranges: [{ start: { line: 3 } }] });
  });

  test("UndefinedVar counts base image Env, ENV, ARG values and declared ARGs as defined, and suggests by edit distance", async () => {
    const lowered = await findings("FROM busybox\nARG NOVALUE\nARG WITHVALUE=1\nENV E=$PATH$NOVALUE$WITHVALUE\nENV F=\"$E $WITHVALEU\"\n");
    expect(lowered.warnings.map((w) => w.message)).toEqual(["Usage of undefined variable '$WITHVALEU' (did you mean $WITHVALUE?)"]);
  });

  test("UndefinedArgInFrom accepts predefined args and global ARGs declared without a value", async () => {
    const lowered = await findings("ARG NOVALUE\nFROM busybox${NOVALUE}${TARGETARCH:+}\n");
    expect(lowered.warnings).toEqual([]);
  });
});

describe("CopyIgnoredFile is experimental", () => {
  const dockerfile = "FROM busybox\nCOPY secret.txt /s\n";
  test("it is off without # check=experimental=", async () => {
    expect((await findings(dockerfile, "report", { dockerignore: "secret.txt\n" })).warnings).toEqual([]);
  });

  test("experimental=all turns it on, and skip= does not turn it off again (BuildKit's order)", async () => {
    const lowered = await findings(`# check=experimental=all;skip=CopyIgnoredFile\n${dockerfile}`, "report", { dockerignore: "secret.txt\n" });
    expect(lowered.warnings.map((w) => w.rule)).toEqual(["CopyIgnoredFile"]);
  });

  test("a .dockerignore with an exception disables it, and the context root is reported only under a pattern that excludes everything", async () => {
    const on = "# check=experimental=CopyIgnoredFile\n";
    expect((await findings(`${on}${dockerfile}`, "report", { dockerignore: "*.txt\n!keep.txt\n" })).warnings).toEqual([]);
    expect((await findings(`${on}FROM busybox\nCOPY . /all\n`, "report", { dockerignore: "*.txt\n" })).warnings).toEqual([]);
    const all = await findings(`${on}FROM busybox\nCOPY . /all\n`, "report", { dockerignore: "**\n" });
    expect(all.warnings.map((w) => w.message)).toEqual(['Attempting to Copy file "." that is excluded by .dockerignore']);
  });
});

describe("build args nothing consumes", () => {
  const message = (names: string) => `One or more build-args [${names}] were not consumed`;

  test("an unused --build-arg is a plain warning (no rule, no range) that # check=error=true does not turn into an error", async () => {
    const lowered = await findings("# check=error=true\nFROM busybox\nARG USED\n", "apply", { buildArgs: { USED: "1", UNUSED: "2", ALSO: "3" } });
    expect(lowered.warnings).toEqual([{ message: message("ALSO UNUSED"), ranges: [] }]);
  });

  test("ARGs of lowered stages and global ARGs their FROM lines use (with what their defaults use) consume build args", async () => {
    const text = "ARG BASE=busy${SUFFIX}\nARG SUFFIX=box\nARG ONLY_GLOBAL\nFROM $BASE AS base\nFROM busybox AS skipped\nARG IN_SKIPPED\nFROM base\nARG IN_FINAL\n";
    const lowered = await findings(text, "report", { buildArgs: { BASE: "busybox", IN_FINAL: "1", IN_SKIPPED: "1", ONLY_GLOBAL: "1" } });
    expect(lowered.warnings.filter((w) => w.rule === undefined).map((w) => w.message)).toEqual([message("IN_SKIPPED ONLY_GLOBAL")]);
  });

  test("predefined args never count: platform args, proxy args in any case, SOURCE_DATE_EPOCH and BUILDKIT_ options", async () => {
    const buildArgs = { TARGETARCH: "amd64", HTTP_PROXY: "http://p", https_proxy: "http://p", SOURCE_DATE_EPOCH: "1", BUILDKIT_INLINE_CACHE: "1" };
    const lowered = await findings("FROM busybox\nRUN true\n", "report", { buildArgs });
    expect(lowered.warnings).toEqual([]);
  });
});
