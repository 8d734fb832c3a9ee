import { describe, expect, it } from "vitest";
import { BadPatternError, goMatch } from "./go-match.js";

// Rows from Go's path/filepath match_test.go semantics: pattern, name, expected (or "error").
const TABLE: readonly [string, string, boolean | "error"][] = [
  ["abc", "abc", true],
  ["*", "abc", true],
  ["*c", "abc", true],
  ["a*", "a", true],
  ["a*", "abc", true],
  ["a*", "ab/c", false],
  ["a*/b", "abc/b", true],
  ["a*/b", "a/c/b", false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true],
  ["a*b?c*x", "abxbbxdbxebxczzy", false],
  ["ab[c]", "abc", true],
  ["ab[b-d]", "abc", true],
  ["ab[e-g]", "abc", false],
  ["ab[^c]", "abc", false],
  ["ab[^b-d]", "abc", false],
  ["ab[^e-g]", "abc", true],
  ["a\\*b", "a*b", true],
  ["a\\*b", "ab", false],
  ["a?b", "a☺b", true],
  ["a[^a]b", "a☺b", true],
  ["a???b", "a☺b", false],
  ["*x", "xxx", true],
  ["[", "a", "error"],
  ["[^", "a", "error"],
  ["[^bc", "a", "error"],
  ["a[", "a", "error"],
  ["a[", "ab", "error"],
  ["*x", "xxx", true],
  ["a\\", "a", "error"],
  ["*.txt", "foo.txt", true],
  ["*.txt", "dir/foo.txt", false],
];

describe("goMatch()", () => {
  for (const [pattern, name, expected] of TABLE) {
    it(`matches "${pattern}" against "${name}" as Go's filepath.Match does (${String(expected)})`, () => {
      if (expected === "error") expect(() => goMatch(pattern, name)).toThrow(BadPatternError);
      else expect(goMatch(pattern, name)).toBe(expected);
    });
  }
});
