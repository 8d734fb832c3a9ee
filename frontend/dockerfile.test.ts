import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "./dockerfile.js";
import { FrontendError } from "./errors.js";
import { createSourceFile } from "./source-file.js";

const FIXTURES = new URL("../test/fixtures/", import.meta.url);
const UPDATE = process.env["KILN_UPDATE_GOLDEN"] === "1";

function cases(folder: string): string[] {
  return readdirSync(new URL(`${folder}/`, FIXTURES)).sort();
}

/** The parsed Dockerfile as plain data (the source file replaced by its name). */
function snapshot(text: string): unknown {
  const { source, ...rest } = parseDockerfile(createSourceFile("Dockerfile", text));
  return JSON.parse(JSON.stringify({ source: source.name, ...rest }));
}

describe("parseDockerfile() golden cases (test/fixtures/parser)", () => {
  it.each(cases("parser"))("parses %s as expected.json says", (name) => {
    const dir = new URL(`parser/${name}/`, FIXTURES);
    const actual = snapshot(readFileSync(new URL("Dockerfile", dir), "utf8"));
    const expectedUrl = new URL("expected.json", dir);
    if (UPDATE || !existsSync(expectedUrl)) writeFileSync(expectedUrl, `${JSON.stringify(actual, null, 2)}\n`);
    expect(actual).toEqual(JSON.parse(readFileSync(expectedUrl, "utf8")));
  });
});

describe("parseDockerfile() negative corpus (test/fixtures/parser-errors)", () => {
  it.each(cases("parser-errors"))("rejects %s with the code and range expected.json says", (name) => {
    const dir = new URL(`parser-errors/${name}/`, FIXTURES);
    const source = createSourceFile("Dockerfile", readFileSync(new URL("Dockerfile", dir), "utf8"));
    let error: unknown;
    try {
      parseDockerfile(source);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FrontendError);
    const fe = error as FrontendError;
    const actual = { code: fe.code, message: fe.message, range: fe.ranges[0] };
    const expectedUrl = new URL("expected.json", dir);
    if (UPDATE || !existsSync(expectedUrl)) writeFileSync(expectedUrl, `${JSON.stringify(actual, null, 2)}\n`);
    expect(fe.source).toBe(source);
    expect(actual).toEqual(JSON.parse(readFileSync(expectedUrl, "utf8")));
  });
});
