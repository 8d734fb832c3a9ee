import { describe, expect, test } from "vitest";
import { excludingPattern, parseDockerignore } from "./dockerignore.js";
import { createSourceFile } from "./source-file.js";

const patterns = (text: string) => parseDockerignore(createSourceFile(".dockerignore", text));

describe("excludingPattern()", () => {
  test("names the line of the pattern that excludes a path", () => {
    expect(excludingPattern(patterns("# comment\nnode_modules\n*.yaml\n"), "config.yaml")).toEqual({ pattern: "*.yaml", line: 3 });
  });

  test("names the parent directory's pattern for a file inside an excluded directory", () => {
    expect(excludingPattern(patterns("build\n"), "build/out/app")).toEqual({ pattern: "build", line: 1 });
  });

  test("is undefined when an exception re-includes the path", () => {
    expect(excludingPattern(patterns("*.md\n!README.md\n"), "README.md")).toBeUndefined();
  });

  test("with last-match-wins, names the later pattern that excludes again after an exception", () => {
    expect(excludingPattern(patterns("*.md\n!README.md\nREADME*\n"), "README.md")).toEqual({ pattern: "README*", line: 3 });
  });

  test("cleans a leading slash or ./ from the path", () => {
    expect(excludingPattern(patterns("/secrets\n"), "./secrets/key")).toEqual({ pattern: "secrets", line: 1 });
  });
});
