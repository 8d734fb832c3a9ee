import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SourceOp } from "../../solver/llb/index.js";
import { git, makeTestRepository, moveBranch, startGitHttpServer, type GitHttpServer } from "../../test/harness/git-server.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createNativeSnapshotter } from "../snapshotter/native.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { createGitSourceRunner, GitChecksumMismatchError, GitRefNotFoundError, parseGitSource } from "./source-git.js";
import { testContext, vertexOf } from "./testing.js";

let dir: string;
let server: GitHttpServer;
let snapshotter: Snapshotter;
let repo: ReturnType<typeof makeTestRepository>;
let remote: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-git-source-"));
  repo = makeTestRepository(join(dir, "repos"), "project");
  server = await startGitHttpServer(join(dir, "repos"));
  remote = `${server.url}/project.git`;
  snapshotter = await createNativeSnapshotter(join(dir, "snapshots"));
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function gitOp(fragment: string, attrs: Record<string, string> = {}): SourceOp {
  const host = remote.slice("http://".length);
  return { kind: "source", identifier: `git://${host}${fragment === "" ? "" : `#${fragment}`}`, attrs: { "git.fullurl": remote, ...attrs } };
}

async function fetchTree(op: SourceOp): Promise<{ digest: string; files: Record<string, string>; root: (fn: (root: string) => void) => Promise<void> }> {
  const runner = createGitSourceRunner({ snapshotter }, vertexOf(op));
  const context = testContext();
  const { digest } = await runner.cacheMap(context);
  const [result] = await runner.run([], context);
  const id = result!.id;
  const files: Record<string, string> = {};
  await withMountedSnapshot(await snapshotter.view(id), async (root) => {
    const walk = (rel: string) => {
      for (const name of readdirSync(join(root, rel)).sort()) {
        const path = rel === "" ? name : `${rel}/${name}`;
        if (path === ".git") continue;
        if (lstatSync(join(root, path)).isDirectory()) walk(path);
        else files[path] = readFileSync(join(root, path), "utf8");
      }
    };
    walk("");
  });
  return { digest, files, root: async (fn) => withMountedSnapshot(await snapshotter.view(id), async (root) => fn(root)) };
}

describe("createGitSourceRunner()", () => {
  it("checks out the default branch without .git, owned by root, with git's modes", async () => {
    const tree = await fetchTree(gitOp(""));
    expect(Object.keys(tree.files)).toEqual(["README.md", "bin/run.sh", "docs/deep/more.md", "docs/guide.md", "second.txt"]);
    await tree.root((root) => {
      expect(existsSync(join(root, ".git"))).toBe(false);
      const run = lstatSync(join(root, "bin/run.sh"));
      expect([run.mode & 0o7777, run.uid, run.gid]).toEqual([0o755, 0, 0]);
      expect(lstatSync(join(root, "README.md")).mode & 0o7777).toBe(0o644);
      expect(lstatSync(join(root, "docs")).mode & 0o7777).toBe(0o755);
    });
  });

  it("checks out a branch, a lightweight tag and an annotated tag by name", async () => {
    expect(Object.keys((await fetchTree(gitOp("feature"))).files)).toContain("feature.txt");
    expect(Object.keys((await fetchTree(gitOp("v1"))).files)).toEqual(["README.md", "bin/run.sh"]);
    expect(Object.keys((await fetchTree(gitOp("v1-annotated"))).files)).toEqual(["README.md", "bin/run.sh"]);
  });

  it("checks out a commit's subdirectory by sha, keeping only that directory's contents", async () => {
    const tree = await fetchTree(gitOp(`${repo.second}:docs`));
    expect(tree.files).toEqual({ "guide.md": "guide\n", "deep/more.md": "more\n" });
  });

  it("keeps .git with keep-git-dir: a repository at the commit with origin set to the remote", async () => {
    const tree = await fetchTree(gitOp("main", { "git.keepgitdir": "true" }));
    await tree.root((root) => {
      expect(git(root, "rev-parse", "HEAD")).toBe(repo.second);
      expect(git(root, "remote", "get-url", "origin")).toBe(remote);
      expect(git(root, "status", "--porcelain")).toBe("");
    });
  });

  it("gives an annotated tag and its commit the same cache key, and keep-git-dir another", async () => {
    const byTag = createGitSourceRunner({ snapshotter }, vertexOf(gitOp("v1-annotated")));
    const byCommit = createGitSourceRunner({ snapshotter }, vertexOf(gitOp(repo.first)));
    const kept = createGitSourceRunner({ snapshotter }, vertexOf(gitOp(repo.first, { "git.keepgitdir": "true" })));
    const digest = async (r: typeof byTag) => (await r.cacheMap(testContext())).digest;
    expect(await digest(byTag)).toBe(await digest(byCommit));
    expect(await digest(kept)).not.toBe(await digest(byCommit));
  });

  it("gives every entry the commit time with git.mtime=commit", async () => {
    const tree = await fetchTree(gitOp("main", { "git.mtime": "commit" }));
    await tree.root((root) => {
      expect(lstatSync(join(root, "docs/guide.md")).mtimeMs / 1000).toBe(Date.parse("2020-01-01T00:00:00Z") / 1000);
      expect(lstatSync(join(root, "docs")).mtimeMs / 1000).toBe(Date.parse("2020-01-01T00:00:00Z") / 1000);
    });
  });

  it("fails with GitRefNotFoundError naming the URL and the ref when the ref does not exist", async () => {
    const runner = createGitSourceRunner({ snapshotter }, vertexOf(gitOp("no-such-branch")));
    const error = await runner.cacheMap(testContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitRefNotFoundError);
    expect((error as Error).message).toBe(`Cannot find "no-such-branch" in the git repository "${remote}": it has no branch, tag or ref of that name`);
  });

  it("verifies git.checksum against the resolved commit, accepting a prefix", async () => {
    const ok = createGitSourceRunner({ snapshotter }, vertexOf(gitOp("v1", { "git.checksum": repo.first.slice(0, 7) })));
    await expect(ok.cacheMap(testContext())).resolves.toBeDefined();
    const bad = createGitSourceRunner({ snapshotter }, vertexOf(gitOp("v1", { "git.checksum": repo.second.slice(0, 7) })));
    const error = await bad.cacheMap(testContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitChecksumMismatchError);
    expect((error as GitChecksumMismatchError).code).toBe("KILN_GIT_CHECKSUM_MISMATCH");
  });

  it("changes the cache key when a branch moves, and keeps it for a branch that did not", async () => {
    const key = async (ref: string) => (await createGitSourceRunner({ snapshotter }, vertexOf(gitOp(ref))).cacheMap(testContext())).digest;
    const feature = await key("feature");
    const main = await key("main");
    moveBranch(repo.work, "feature", { "moved.txt": "moved\n" });
    expect(await key("feature")).not.toBe(feature);
    expect(await key("main")).toBe(main);
  });

  it("parseGitSource() reads the identifier's ref and subdir and the attrs", () => {
    expect(parseGitSource("git://h/r.git#v1:a/b", { "git.fullurl": "https://h/r.git", "git.keepgitdir": "true" })).toMatchObject({
      remote: "https://h/r.git", ref: "v1", subdir: "a/b", keepGitDir: true, mtime: "checkout",
    });
    expect(parseGitSource("git://h/r.git", {}).remote).toBe("https://h/r.git");
    expect(() => parseGitSource("git://h/r.git", { "git.checksum": "xyz" })).toThrow(/hex commit hash/u);
  });
});
