import { describe, expect, it } from "vitest";
import type { FileOp, Op, SourceOp } from "../../solver/llb/index.js";
import { parseDockerfile } from "../dockerfile.js";
import { FrontendError } from "../errors.js";
import { createSourceFile } from "../source-file.js";
import { parseGitRef, type GitRef } from "./git-ref.js";
import { lowerDockerfile } from "./index.js";

/** Cases from BuildKit's dfgitutil git_ref_test.go (Dockerfile 1.26): undefined = not a git source. */
const CASES: [string, Partial<GitRef> | undefined][] = [
  ["https://example.com/", undefined],
  ["https://example.com/foo", undefined],
  ["https://example.com/foo.git", { remote: "https://example.com/foo.git", ref: "", subdir: "" }],
  ["https://example.com/foo.git#deadbeef", { remote: "https://example.com/foo.git", ref: "deadbeef" }],
  ["https://example.com/foo.git#release/1.2", { ref: "release/1.2" }],
  ["https://example.com/foo.git/", undefined],
  ["https://example.com/foo.git.bar", undefined],
  ["git://example.com/foo", { remote: "git://example.com/foo", scheme: "git", host: "example.com", path: "/foo" }],
  ["github.com/moby/buildkit", undefined],
  ["custom.xyz/moby/buildkit.git", undefined],
  ["https://github.com/moby/buildkit", undefined],
  ["https://foo:bar@github.com/moby/buildkit.git", { remote: "https://foo:bar@github.com/moby/buildkit.git", host: "github.com" }],
  ["git@github.com:moby/buildkit", { remote: "git@github.com:moby/buildkit", scheme: "ssh", host: "github.com", path: "moby/buildkit" }],
  ["git@bitbucket.org:atlassianlabs/atlassian-docker.git", { remote: "git@bitbucket.org:atlassianlabs/atlassian-docker.git" }],
  ["https://github.com/foo/bar.git#baz/qux:quux/quuz", { remote: "https://github.com/foo/bar.git", ref: "baz/qux", subdir: "quux/quuz" }],
  ["http://github.com/docker/docker.git:#branch", undefined],
  ["https://github.com/docker/docker.git#:myfolder", { ref: "", subdir: "myfolder" }],
  ["./.git", undefined],
  [".git", undefined],
  ["https://github.com/docker/docker.git?ref=v1.0.0&subdir=/subdir", { remote: "https://github.com/docker/docker.git", ref: "v1.0.0", subdir: "/subdir" }],
  ["https://github.com/moby/buildkit.git?tag=v1.0.0", { ref: "refs/tags/v1.0.0" }],
  ["https://github.com/moby/buildkit.git?branch=v1.0", { ref: "refs/heads/v1.0" }],
  ["https://github.com/moby/buildkit.git?keep-git-dir&checksum=abc123", { keepGitDir: true, checksum: "abc123" }],
  ["https://github.com/moby/buildkit.git?submodules=false&mtime=commit", { submodules: false, mtime: "commit" }],
  ["git@github.com:moby/buildkit.git?subdir=/subdir#v1.0.0", { remote: "git@github.com:moby/buildkit.git", ref: "v1.0.0", subdir: "/subdir" }],
  ["ftp://example.com/foo.git", undefined],
];

const ERRORS: [string, string][] = [
  ["https://github.com/moby/buildkit.git?ref=v1.0.0&tag=v1.2.3", "ref conflicts"],
  ["https://github.com/moby/buildkit.git?tag=v1.0.0&branch=v1.0", "branch conflicts with tag"],
  ["https://github.com/moby/buildkit.git?mtime=invalid", "invalid mtime value"],
  ["https://github.com/moby/buildkit.git?fetch-by-commit=invalid", "invalid fetch-by-commit value"],
  ["https://github.com/moby/buildkit.git?invalid=123", `unexpected query "invalid"`],
  ["https://github.com/moby/buildkit.git?ref=", `query "ref" has no value`],
];

describe("parseGitRef()", () => {
  for (const [src, expected] of CASES) {
    it(`reads ${JSON.stringify(src)} as ${expected === undefined ? "no git source" : "a git source"}`, () => {
      const ref = parseGitRef(src);
      if (expected === undefined) expect(ref).toBeUndefined();
      else expect(ref).toMatchObject(expected);
    });
  }
  for (const [src, message] of ERRORS) {
    it(`refuses ${JSON.stringify(src)} with "${message}"`, () => {
      expect(() => parseGitRef(src)).toThrow(FrontendError);
      expect(() => parseGitRef(src)).toThrow(message);
    });
  }
});

async function lowerAdd(line: string): Promise<{ git: SourceOp; copy: FileOp }> {
  const build = await lowerDockerfile(parseDockerfile(createSourceFile("Dockerfile", `FROM scratch\n${line}\n`)), {
    platform: { os: "linux", architecture: "amd64" },
    buildPlatform: { os: "linux", architecture: "amd64" },
    resolveImage: () => Promise.reject(new Error("no image here")),
  });
  const all: Op[] = [...build.definition.ops.values()];
  const git = all.find((op): op is SourceOp => op.kind === "source" && op.identifier.startsWith("git://"));
  const copy = all.find((op): op is FileOp => op.kind === "file");
  if (git === undefined || copy === undefined) throw new Error("expected a git source and a file op");
  return { git, copy };
}

describe("ADD of a git repository", () => {
  it("lowers to a git:// source named by host, path, ref and subdir, copied from its root", async () => {
    const { git, copy } = await lowerAdd("ADD https://example.com/owner/repo.git#v1.2:docs /dst");
    expect(git.identifier).toBe("git://example.com/owner/repo.git#v1.2:docs");
    expect(git.attrs).toEqual({ "git.fullurl": "https://example.com/owner/repo.git", "git.authheadersecret": "GIT_AUTH_HEADER", "git.authtokensecret": "GIT_AUTH_TOKEN" });
    expect(copy.actions[0]).toMatchObject({ kind: "copy", src: "/", dest: "/dst", attemptUnpack: false, createDestPath: true });
  });

  it("gives an scp-like remote the same identifier as its https form, with the ssh socket attr", async () => {
    const { git } = await lowerAdd("ADD git@example.com:owner/repo.git#main /dst");
    expect(git.identifier).toBe("git://example.com/owner/repo.git#main");
    expect(git.attrs).toMatchObject({ "git.fullurl": "git@example.com:owner/repo.git", "git.mountsshsock": "default" });
  });

  it("puts --keep-git-dir and --checksum in the attrs, so they change the op digest", async () => {
    const { git } = await lowerAdd("ADD --keep-git-dir=true --checksum=abc123 git://example.com/repo /dst");
    expect(git.attrs).toMatchObject({ "git.keepgitdir": "true", "git.checksum": "abc123", "git.fullurl": "git://example.com/repo" });
  });

  it("refuses --keep-git-dir that contradicts the URL's keep-git-dir query", async () => {
    await expect(lowerAdd("ADD --keep-git-dir=false https://example.com/r.git?keep-git-dir=true /dst")).rejects.toThrow("contradicts");
  });

  it("refuses --checksum with a local source, as BuildKit does", async () => {
    await expect(lowerAdd("ADD --checksum=abc file.txt /dst")).rejects.toThrow(`a checksum needs an http(s) URL or a git repository`);
  });

  it("refuses COPY of a git repository", async () => {
    await expect(lowerAdd("COPY https://example.com/r.git /dst")).rejects.toThrow("a git source needs ADD");
  });
});
