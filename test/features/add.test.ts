import { execFileSync } from "node:child_process";
import { lstat, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { layerTar } from "../../worker/snapshotter/testing/layer-tar.js";
import { buildImage } from "../harness/built-image.js";
import { makeTestRepository, moveBranch, startGitHttpServer, type GitHttpServer } from "../harness/git-server.js";
import { createScratch, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

const APP = [
  { name: "app/", type: "directory" as const, mode: 0o750, uid: 1000, gid: 1000, mtime: 1_500_000_000 },
  { name: "app/run.sh", content: "#!/bin/sh\n", mode: 0o755, uid: 1000, gid: 1000, mtime: 1_500_000_000 },
  { name: "app/link", type: "symlink" as const, linkname: "run.sh", uid: 1000, gid: 1000 },
];

describe("ADD of local archives", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("unpacks tar archives found by content (gzip, xz, plain), keeps them packed with --unpack=false, copies non-archives", async () => {
    const context = await scratch.context("archives", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "ADD app.tgz /opt/",
        "ADD data.bin /data",
        "ADD --unpack=false app.tgz /packed/",
        "ADD fake.tar.gz /fake/",
        "ADD --chown=5:6 plain.tar /owned/",
        // Owners as the container sees them (umoci unpacks rootless, so the host copy has lost them).
        "RUN stat -c '%n %u:%g %a' /opt/app /opt/app/run.sh /owned/app/run.sh > /owners",
        "",
      ].join("\n"),
      "fake.tar.gz": "not an archive\n",
    });
    const tar = await layerTar(APP);
    await writeFile(join(context, "app.tgz"), gzipSync(tar));
    await writeFile(join(context, "data.bin"), execFileSync("xz", ["-c"], { input: await layerTar([{ name: "d.txt", content: "xz data" }]) }));
    await writeFile(join(context, "plain.tar"), tar);
    const image = await buildImage(scratch, "archives", context);
    const run = await lstat(join(image.rootfs, "opt/app/run.sh"));
    expect([run.mode & 0o7777, run.mtimeMs / 1000]).toEqual([0o755, 1_500_000_000]);
    expect(await image.read("owners")).toBe("/opt/app 1000:1000 750\n/opt/app/run.sh 1000:1000 755\n/owned/app/run.sh 5:6 755\n");
    expect(await readlink(join(image.rootfs, "opt/app/link"))).toBe("run.sh");
    expect(await image.read("data/d.txt")).toBe("xz data");
    expect((await lstat(join(image.rootfs, "packed/app.tgz"))).isFile()).toBe(true);
    expect(await image.read("fake/fake.tar.gz")).toBe("not an archive\n");
  });

  test("an archive entry that escapes the destination fails the build, naming the archive and the entry", async () => {
    const context = await scratch.context("escape", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "ADD evil.tar /opt/", ""].join("\n"),
    });
    await writeFile(join(context, "evil.tar"), await layerTar([{ name: "../../../etc/evil", content: "x" }]));
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`Cannot unpack "evil.tar": entry "../../../etc/evil" is refused because its name climbs above the destination`);
  });
});

describe("ADD of a git repository", () => {
  let scratch: Scratch;
  let server: GitHttpServer;
  let repo: ReturnType<typeof makeTestRepository>;
  let url: string;
  beforeAll(async () => {
    scratch = await createScratch();
    repo = makeTestRepository(join(scratch.dir, "repos"), "project");
    server = await startGitHttpServer(join(scratch.dir, "repos"));
    url = `${server.url}/project.git`;
  });
  afterAll(async () => {
    await server.close();
    await scratch.dispose();
  });

  test("adds a branch, a tag, a commit's subdirectory and a checkout with its .git directory", async () => {
    const context = await scratch.context("git", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        `ADD ${url}#feature /branch`,
        `ADD ${url}#v1 /tag`,
        `ADD ${url}#${repo.second}:docs /docs`,
        `ADD --keep-git-dir=true ${url}#main /kept`,
        `ADD --checksum=${repo.first.slice(0, 8)} ${url}?tag=v1-annotated /checked`,
        "RUN stat -c '%n %u:%g %a' /branch/bin/run.sh /branch/README.md /branch/bin > /owners",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "git", context);
    expect(await image.read("branch/feature.txt")).toBe("feature\n");
    expect(await image.read("tag/README.md")).toBe("hello\n");
    await expect(lstat(join(image.rootfs, "tag/second.txt"))).rejects.toThrow();
    await expect(lstat(join(image.rootfs, "branch/.git"))).rejects.toThrow();
    expect(await image.read("docs/guide.md")).toBe("guide\n");
    expect(await image.read("docs/deep/more.md")).toBe("more\n");
    expect((await lstat(join(image.rootfs, "kept/.git/HEAD"))).isFile()).toBe(true);
    expect(await image.read("kept/.git/HEAD")).toBe(`${repo.second}\n`);
    expect(await image.read("checked/README.md")).toBe("hello\n");
    expect(await image.read("owners")).toBe("/branch/bin/run.sh 0:0 755\n/branch/README.md 0:0 644\n/branch/bin 0:0 755\n");
  });

  test("a ref that does not exist fails the build with an error naming the URL and the ref", async () => {
    const context = await scratch.context("git-missing", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, `ADD ${url}#no-such-ref /src`, ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`Cannot find "no-such-ref" in the git repository "${url}": it has no branch, tag or ref of that name`);
  });

  test("a rebuild re-runs the ADD of a branch that moved and finds the unchanged one CACHED", async () => {
    // A state root of its own: the tests above already cached these commits (the key is the commit, as in BuildKit).
    const root = join(scratch.dir, "cache-root");
    const context = await scratch.context("git-cache", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, `ADD ${url}#main /main`, `ADD ${url}#feature /feature`, ""].join("\n"),
    });
    const statuses = async (): Promise<Record<string, string>> => {
      const run = await runKiln(root, ["build", "--progress", "rawjson", context]);
      expect(run.code, run.stderr).toBe(0);
      const out: Record<string, string> = {};
      for (const event of progressEvents(run.stderr)) {
        if (!("name" in event) || !event.name.startsWith("ADD ")) continue;
        if (event.type === "vertex.cached") out[event.name] = "cached";
        if (event.type === "vertex.started") out[event.name] = "ran";
      }
      return out;
    };
    expect(await statuses()).toEqual({ [`ADD ${url}#main`]: "ran", [`ADD ${url}#feature`]: "ran" });
    expect(await statuses()).toEqual({ [`ADD ${url}#main`]: "cached", [`ADD ${url}#feature`]: "cached" });
    moveBranch(repo.work, "feature", { "later.txt": "later\n" });
    expect(await statuses()).toEqual({ [`ADD ${url}#main`]: "cached", [`ADD ${url}#feature`]: "ran" });
  });
});
