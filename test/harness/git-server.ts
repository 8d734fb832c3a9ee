import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";

/**
 * Test support: real git repositories served over loopback HTTP by `git http-backend` (git's own
 * smart-HTTP server, run as a CGI per request from a small node http server), so the git source
 * is exercised against the same protocol a forge speaks, without the network.
 */
export interface GitHttpServer {
  /** `http://127.0.0.1:PORT`; a repository `NAME.git` under the root is at `${url}/NAME.git`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves every repository under `root` (export-all) until `close()`. */
export async function startGitHttpServer(root: string): Promise<GitHttpServer> {
  const server = createServer((req, res) => serveCgi(root, req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function serveCgi(root: string, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const child = spawn("git", ["http-backend"], {
    stdio: ["pipe", "pipe", "inherit"],
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: "127.0.0.1",
      ...(req.headers["content-encoding"] === undefined ? {} : { HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"]) }),
      ...(req.headers["git-protocol"] === undefined ? {} : { GIT_PROTOCOL: String(req.headers["git-protocol"]) }),
    },
  });
  req.pipe(child.stdin);
  child.stdin.on("error", () => {});
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    const endLf = head.indexOf("\n\n");
    const at = end !== -1 ? end : endLf;
    if (at === -1) return;
    const sep = end !== -1 ? 4 : 2;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, at).toString("latin1").split(/\r?\n/u)) {
      const colon = line.indexOf(":");
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(at + sep));
  });
  child.on("close", () => {
    if (!headersDone) res.writeHead(502);
    res.end();
  });
}

/** Runs git in `cwd` with a fixed identity and clean config; returns trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "kiln test",
      GIT_AUTHOR_EMAIL: "test@kiln.invalid",
      GIT_COMMITTER_NAME: "kiln test",
      GIT_COMMITTER_EMAIL: "test@kiln.invalid",
      GIT_AUTHOR_DATE: "2020-01-01T00:00:00Z",
      GIT_COMMITTER_DATE: "2020-01-01T00:00:00Z",
    },
  }).trim();
}

/** Writes `files` (path → content; a path ending in `*` is made executable) into `dir`, creating parents. */
export function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  for (const [name, content] of Object.entries(files)) {
    const executable = name.endsWith("*");
    const path = join(dir, executable ? name.slice(0, -1) : name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode: executable ? 0o755 : 0o644 });
  }
}

/**
 * A bare repository `ROOT/NAME.git` with branch `main` (two commits: the second adds
 * `docs/guide.md` and `second.txt`), a lightweight tag `v1` and an annotated tag `v1-annotated`
 * at the first commit, and a branch `feature` with `feature.txt`. Returns the commits.
 */
export function makeTestRepository(root: string, name: string): { first: string; second: string; feature: string; work: string; bare: string } {
  const work = join(root, `${name}-work`);
  const bare = join(root, `${name}.git`);
  mkdirSync(work, { recursive: true });
  git(work, "init", "-q", "-b", "main");
  writeFiles(work, { "README.md": "hello\n", "bin/run.sh*": "#!/bin/sh\necho run\n" });
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "first");
  const first = git(work, "rev-parse", "HEAD");
  git(work, "tag", "v1");
  git(work, "tag", "-a", "-m", "annotated", "v1-annotated");
  writeFiles(work, { "docs/guide.md": "guide\n", "docs/deep/more.md": "more\n", "second.txt": "2\n" });
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "second");
  const second = git(work, "rev-parse", "HEAD");
  git(work, "checkout", "-q", "-b", "feature");
  writeFiles(work, { "feature.txt": "feature\n" });
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "feature");
  const feature = git(work, "rev-parse", "HEAD");
  git(work, "checkout", "-q", "main");
  git(root, "clone", "-q", "--bare", work, bare);
  git(work, "remote", "add", "origin", bare);
  return { first, second, feature, work, bare };
}

/** Adds a commit on `branch` of the work tree and pushes it to the bare repository; returns it. */
export function moveBranch(work: string, branch: string, files: Readonly<Record<string, string>>): string {
  git(work, "checkout", "-q", branch);
  writeFiles(work, files);
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", `move ${branch}`);
  git(work, "push", "-q", "origin", branch);
  return git(work, "rev-parse", "HEAD");
}
