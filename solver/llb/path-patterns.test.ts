import { describe, expect, it } from "vitest";
import { cleanPath, createPathMatcher, PathPatternError } from "./path-patterns.js";

/** [patterns, path, excluded] — rows after moby/patternmatcher's own tests (MatchesOrParentMatches). */
const TABLE: readonly (readonly [readonly string[], string, boolean])[] = [
  [["*"], "fileutils.go", true],
  [["*.go"], "fileutils.go", true],
  [["!fileutils.go", "*.go"], "fileutils.go", true],
  [["*.go", "!fileutils.go"], "fileutils.go", false],
  [["docs", "!docs/README.md"], "docs/README.md", false],
  [["docs/", "!docs/README.md"], "docs/README.md", false],
  [["docs/*", "!docs/README.md"], "docs/README.md", false],
  [["docs", "!docs/README.md"], "docs/other.md", true],
  [["*.go"], ".", false],
  [[], "any/path/there", false],
  [["**"], "file", true],
  [["**/"], "file", true],
  [["**"], "dir/file", true],
  [["**/**"], "dir/file", true],
  [["dir/**"], "dir/file", true],
  [["dir/**"], "dir/dir2/file", true],
  [["**/dir"], "dir", true],
  [["**/dir"], "dir/file", true],
  [["**/dir2/*"], "dir/dir2/file", true],
  [["**/dir2/**"], "dir/dir2/dir3/file", true],
  [["**file"], "file", true],
  [["**file"], "dir/dir/file", true],
  [["**/file"], "dir/dir/file", true],
  [["**/file*"], "dir/dir/file.txt", true],
  [["**/file*txt"], "dir/dir/file.txt", true],
  [["**/file*.txt*"], "dir/dir/file.txt", true],
  [["**/**/*.txt"], "dir/dir/file.txt", true],
  [["**/**/*.txt2"], "dir/dir/file.txt", false],
  [["**/*.txt"], "file.txt", true],
  [["a**/*.txt"], "a/dir/dir/file.txt", true],
  [["a/*.txt"], "a/dir/file.txt", false],
  [["a/*.txt"], "a/file.txt", true],
  [["a/*.txt**"], "a/file.txt", true],
  [["a[b-d]e"], "ae", false],
  [["a[b-d]e"], "ace", true],
  [["a[b-d]e"], "aae", false],
  [["a[^b-d]e"], "aze", true],
  [[".*"], ".foo", true],
  [[".*"], "foo", false],
  [["abc.def"], "abcdef", false],
  [["abc.def"], "abc.def", true],
  [["abc?def"], "abcZdef", true],
  [["abc?def"], "abcdef", false],
  [["**/foo/bar"], "foo/bar", true],
  [["**/foo/bar"], "dir/dir2/foo/bar", true],
  [["abc/**"], "abc", false],
  [["abc/**"], "abc/def/ghi", true],
  [["**/.foo"], ".foo", true],
  [["**/.foo"], "bar.foo", false],
  [["a(b)c/def"], "a(b)c/def", true],
  [["a.|)$(}+{bc"], "a.|)$(}+{bc", true],
  [["dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  [["**", "!util/docker/web"], "util/docker/web/foo", false],
  [["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true],
  [["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
  [["a\\\\"], "a\\", true],
  [["a\\*b"], "a*b", true],
  [["a\\*b"], "ab", false],
  // filepath.Match's own rows
  [["a*"], "ab/c", true],
  [["a*/b"], "abc/b", true],
  [["a*/b"], "a/c/b", false],
  [["a*b*c*d*e*/f"], "axbxcxdxexxx/f", true],
  [["a*b*c*d*e*/f"], "axbxcxdxe/xxx/f", false],
  [["a*b?c*x"], "abxbbxdbxebxczzx", true],
  [["a*b?c*x"], "abxbbxdbxebxczzy", false],
  [["ab[^c]"], "abc", false],
  [["ab[^e-g]"], "abc", true],
  [["a?b"], "a☺b", true],
  [["a[^a]b"], "a☺b", true],
  [["a???b"], "a☺b", false],
  [["[a-ζ]*"], "α", true],
  [["*[a-ζ]"], "A", false],
  [["a?b"], "a/b", false],
  [["a*b"], "a/b", false],
  [["[\\]a]"], "]", true],
  [["[\\-]"], "-", true],
  [["[x\\-]"], "-", true],
  [["[x\\-]"], "z", false],
  [["[\\-x]"], "x", true],
  [["*x"], "xxx", true],
  // cleaning: leading "/" and "./", doubled slashes, "..", surrounding spaces
  [["/foo"], "foo", true],
  [["./foo"], "foo/bar", true],
  [["foo//bar/../baz"], "foo/baz", true],
  [["  foo  "], "foo", true],
  [["!./foo", "foo"], "foo", true],
  [["*", "!./keep"], "keep", false],
  [["*", "!/keep"], "keep/inner", false],
  [["node_modules"], "./node_modules/x", true],
  // last match wins, parent directories decide for their contents
  [["dir", "!dir/keep", "dir/keep/drop"], "dir/keep/drop/file", true],
  [["dir", "!dir/keep", "dir/keep/drop"], "dir/keep/other", false],
  [["*.md", "!README.md"], "README.md", false],
  [["*.md", "!README.md"], "docs/README.md", false],
];

describe("createPathMatcher()", () => {
  it.each(TABLE.map(([patterns, path, excluded]) => ({ patterns, path, excluded })))(
    "$patterns applied to $path gives excluded=$excluded",
    ({ patterns, path, excluded }) => {
      expect(createPathMatcher(patterns).excludes(path)).toBe(excluded);
    },
  );

  it.each(["!", "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[z-a]"])(
    "rejects the malformed pattern %s",
    (pattern) => {
      expect(() => createPathMatcher([pattern])).toThrow(PathPatternError);
    },
  );

  it("reports whether any pattern is an exception", () => {
    expect(createPathMatcher(["docs", "  !docs/README.md  "]).hasExceptions).toBe(true);
    expect(createPathMatcher(["docs", ""]).hasExceptions).toBe(false);
  });
});

describe("cleanPath()", () => {
  it.each([
    ["", "."], [".", "."], ["./a", "a"], ["a/", "a"], ["a//b", "a/b"], ["a/./b", "a/b"], ["a/../b", "b"],
    ["../a", "../a"], ["/../a", "/a"], ["/", "/"], ["a/b/../../..", ".."],
  ])("cleans %j to %j like Go's path.Clean", (input, expected) => {
    expect(cleanPath(input)).toBe(expected);
  });
});
