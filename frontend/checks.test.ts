import { readdirSync, readFileSync } from "node:fs";
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

/** Lowers with a resolver that knows every image as an empty linux/amd64 one: checks need no registry. */
async function findings(text: string, checks: "apply" | "report" = "report") {
  const dockerfile = parseDockerfile(createSourceFile("Dockerfile", text));
  const platform = parsePlatform("linux/amd64");
  return lowerDockerfile(dockerfile, {
    platform,
    buildPlatform: platform,
    checks,
    resolveImage: (ref) => Promise.resolve({ ref: `docker.io/library/${ref}:latest`, config: { architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [] } } }),
  });
}

describe("build checks, one fixture folder per rule (test/fixtures/checks/<rule>)", () => {
  for (const rule of readdirSync(FIXTURES).sort()) {
    test(`${rule}: reports exactly the expected findings, with positions and the rule's URL`, async () => {
      const text = readFileSync(join(FIXTURES, rule, "Dockerfile"), "utf8");
      const expected = JSON.parse(readFileSync(join(FIXTURES, rule, "expected.json"), "utf8")) as Expected[];
      const lowered = await findings(text);
      const got = lowered.warnings.map((w) => ({ rule: w.rule, line: w.ranges[0]?.start.line, message: w.message }));
      expect(got).toEqual(expected);
      for (const w of lowered.warnings) expect(w.url).toBe(ruleUrl(w.rule));
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
