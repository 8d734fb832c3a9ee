import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { SourceOp } from "../../solver/llb/index.js";
import { createNativeSnapshotter } from "../snapshotter/native.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { createHttpSourceRunner, HttpChecksumMismatchError, parseHttpSource, type HttpSourceDeps } from "./source-http.js";
import { HttpFetchError, proxyFor } from "./source-http-fetch.js";
import { testContext, vertexOf } from "./testing.js";

/** What the test server serves at a path, and how. */
interface Served {
  body: string;
  etag?: string;
  lastModified?: string;
  disposition?: string;
  status?: number;
  redirect?: string;
  /** Destroy the socket without answering this many times first. */
  resets?: number;
}

let dir: string;
let server: Server;
let base: string;
let snapshotter: Snapshotter;
const files = new Map<string, Served>();
/** Requests per path, and how many of them were answered with a full body. */
const hits = new Map<string, { requests: number; full: number; ifNoneMatch: string[] }>();

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const count = hits.get(path) ?? { requests: 0, full: 0, ifNoneMatch: [] };
  hits.set(path, count);
  count.requests++;
  if (typeof req.headers["if-none-match"] === "string") count.ifNoneMatch.push(req.headers["if-none-match"]);
  const served = files.get(path);
  if (served === undefined) {
    res.writeHead(404).end("not found");
    return;
  }
  if ((served.resets ?? 0) > 0) {
    served.resets = (served.resets ?? 0) - 1;
    req.socket.destroy();
    return;
  }
  if (served.redirect !== undefined) {
    res.writeHead(302, { location: served.redirect }).end();
    return;
  }
  const headers: Record<string, string> = {};
  if (served.etag !== undefined) headers["etag"] = served.etag;
  if (served.lastModified !== undefined) headers["last-modified"] = served.lastModified;
  if (served.disposition !== undefined) headers["content-disposition"] = served.disposition;
  const asked = req.headers["if-none-match"];
  if (served.etag !== undefined && typeof asked === "string" && asked.split(",").map((s) => s.trim()).includes(served.etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  count.full++;
  res.writeHead(served.status ?? 200, headers).end(served.body);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-http-source-"));
  snapshotter = await createNativeSnapshotter(join(dir, "snapshots"));
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  files.clear();
  hits.clear();
});

const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

function httpOp(path: string, attrs: Record<string, string> = {}): SourceOp {
  return { kind: "source", identifier: `${base}${path}`, attrs };
}

/** One "build": a fresh runner (as a new solve makes), its cache map, then its run; the snapshot's single file. */
async function build(op: SourceOp, deps: Partial<HttpSourceDeps> = {}) {
  const runner = createHttpSourceRunner({ snapshotter, stateDir: join(dir, "state"), retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 }, env: {}, ...deps }, vertexOf(op));
  const context = testContext();
  const { digest } = await runner.cacheMap(context);
  const [result] = await runner.run([], context);
  const view = await snapshotter.view(result!.id);
  if (view.kind !== "bind") throw new Error("the native snapshotter gives bind views");
  const names = readdirSync(view.source);
  const path = join(view.source, names[0] ?? "");
  const stats = statSync(path);
  return { key: digest, snapshot: result!.id, names, content: readFileSync(path, "utf8"), mode: stats.mode & 0o7777, mtime: stats.mtimeMs / 1000, uid: stats.uid, gid: stats.gid };
}

describe("createHttpSourceRunner()", () => {
  it("downloads a URL into a snapshot: named by the last path segment, mode 0600, mtime from Last-Modified", async () => {
    files.set("/dir/f.txt", { body: "hello\n", lastModified: "Tue, 14 Nov 2023 22:13:20 GMT" });
    const got = await build(httpOp("/dir/f.txt"));
    expect(got).toMatchObject({ names: ["f.txt"], content: "hello\n", mode: 0o600, mtime: 1_700_000_000, uid: 0, gid: 0 });
  });

  it("gives a file without Last-Modified the epoch as mtime, and takes Content-Disposition's name when no http.filename is set", async () => {
    files.set("/download", { body: "x", disposition: 'attachment; filename="tool-1.2.tar.gz"' });
    const got = await build(httpOp("/download"));
    expect(got).toMatchObject({ names: ["tool-1.2.tar.gz"], mtime: 0 });
    expect((await build(httpOp("/download", { "http.filename": "chosen" }))).names).toEqual(["chosen"]);
  });

  it("applies http.perm, http.uid and http.gid", async () => {
    files.set("/tool", { body: "#!/bin/sh\n" });
    const got = await build(httpOp("/tool", { "http.perm": "0755", "http.uid": "1000", "http.gid": "1001" }));
    expect(got).toMatchObject({ mode: 0o755, uid: 1000, gid: 1001 });
  });

  it("asks with If-None-Match in a later build and reuses the stored snapshot on a 304", async () => {
    files.set("/etag.txt", { body: "same\n", etag: '"v1"' });
    const first = await build(httpOp("/etag.txt"));
    const second = await build(httpOp("/etag.txt"));
    expect(second.key).toBe(first.key);
    expect(second.snapshot).toBe(first.snapshot);
    expect(hits.get("/etag.txt")).toEqual({ requests: 2, full: 1, ifNoneMatch: ['"v1"'] });
  });

  it("gives changed content a new key and a new snapshot, and the old content its old key back", async () => {
    files.set("/moving.txt", { body: "one\n", etag: '"1"', lastModified: "Tue, 14 Nov 2023 22:13:20 GMT" });
    const one = await build(httpOp("/moving.txt"));
    files.set("/moving.txt", { body: "two\n", etag: '"2"', lastModified: "Tue, 14 Nov 2023 22:13:20 GMT" });
    const two = await build(httpOp("/moving.txt"));
    expect(two.key).not.toBe(one.key);
    expect(two.content).toBe("two\n");
    files.set("/moving.txt", { body: "one\n", etag: '"1"', lastModified: "Tue, 14 Nov 2023 22:13:20 GMT" });
    const back = await build(httpOp("/moving.txt"));
    expect([back.key, back.snapshot]).toEqual([one.key, one.snapshot]);
    expect(hits.get("/moving.txt")?.full).toBe(2);
  });

  it("without an ETag, a new download of the same bytes keeps the key and the snapshot", async () => {
    files.set("/noetag.txt", { body: "stable\n" });
    const first = await build(httpOp("/noetag.txt"));
    const second = await build(httpOp("/noetag.txt"));
    expect(second.key).toBe(first.key);
    expect(second.snapshot).toBe(first.snapshot);
  });

  it("with a checksum: the checksum is the key without any request, and the download is verified", async () => {
    files.set("/pinned.txt", { body: "pinned\n" });
    const op = httpOp("/pinned.txt", { "http.checksum": sha("pinned\n") });
    const runner = createHttpSourceRunner({ snapshotter, stateDir: join(dir, "state"), env: {} }, vertexOf(op));
    await runner.cacheMap(testContext());
    expect(hits.get("/pinned.txt")).toBeUndefined();
    expect((await build(op)).content).toBe("pinned\n");
  });

  it("with a wrong checksum: fails naming the URL, the expected and the actual digest", async () => {
    files.set("/bad.txt", { body: "actual\n" });
    const expected = sha("expected\n");
    const failure = build(httpOp("/bad.txt", { "http.checksum": expected }));
    await expect(failure).rejects.toBeInstanceOf(HttpChecksumMismatchError);
    await expect(failure).rejects.toThrow(`Cannot use the download of "${base}/bad.txt": its content has the digest ${sha("actual\n")}, but --checksum expects ${expected}`);
  });

  it("fails on a 404 with the URL and the status, without retrying", async () => {
    const failure = build(httpOp("/missing.txt"));
    await expect(failure).rejects.toBeInstanceOf(HttpFetchError);
    await expect(failure).rejects.toThrow(`Cannot download "${base}/missing.txt": the server answered HTTP 404 Not Found`);
    expect(hits.get("/missing.txt")?.requests).toBe(1);
  });

  it("retries a 503 and gives up with the status after the policy's attempts", async () => {
    files.set("/busy", { body: "busy", status: 503 });
    await expect(build(httpOp("/busy"))).rejects.toThrow("the server answered HTTP 503 Service Unavailable");
    expect(hits.get("/busy")?.requests).toBe(3);
  });

  it("retries a connection reset and then succeeds", async () => {
    files.set("/flaky.txt", { body: "finally\n", resets: 1 });
    expect((await build(httpOp("/flaky.txt"))).content).toBe("finally\n");
    expect(hits.get("/flaky.txt")?.requests).toBe(2);
  });

  it("follows redirects, naming the file after the URL it was asked for", async () => {
    files.set("/old/name.txt", { body: "", redirect: "/new/other.txt" });
    files.set("/new/other.txt", { body: "moved\n" });
    expect(await build(httpOp("/old/name.txt"))).toMatchObject({ names: ["name.txt"], content: "moved\n" });
  });

  it("goes through HTTP_PROXY for a host that is not loopback", async () => {
    files.set("/via-proxy.txt", { body: "proxied\n" });
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      seen.push(req.url ?? "");
      const target = new URL(req.url ?? "");
      const upstream = request(`${base}${target.pathname}`, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.end();
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const op: SourceOp = { kind: "source", identifier: "http://files.kiln-test.invalid/via-proxy.txt", attrs: {} };
      const env = { HTTP_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
      expect((await build(op, { env })).content).toBe("proxied\n");
      expect(seen).toEqual(["http://files.kiln-test.invalid/via-proxy.txt"]);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe("proxyFor()", () => {
  const env = { HTTPS_PROXY: "proxy.example:3128", HTTP_PROXY: "http://p:8080", NO_PROXY: "internal.example,.corp,10.0.0.1:8443" };
  it.each([
    ["https://files.example/x", "http://proxy.example:3128/"],
    ["http://files.example/x", "http://p:8080/"],
    ["https://a.internal.example/x", undefined],
    ["https://internal.example/x", undefined],
    ["https://git.corp/x", undefined],
    ["https://10.0.0.1:8443/x", undefined],
    ["https://10.0.0.1/x", "http://proxy.example:3128/"],
    ["http://127.0.0.1:8080/x", undefined],
    ["http://localhost/x", undefined],
  ])("%s → %s", (url, expected) => {
    expect(proxyFor(new URL(url), env)?.href).toBe(expected);
  });
});

describe("parseHttpSource()", () => {
  it("reads Go-style integers for http.perm and rejects a malformed checksum", () => {
    expect(parseHttpSource("https://x/y", { "http.perm": "0644", "http.uid": "0x10" })).toMatchObject({ perm: 0o644, uid: 16, gid: 0, filename: "" });
    expect(() => parseHttpSource("https://x/y", { "http.checksum": "md5:abc" })).toThrow(`Cannot use the checksum "md5:abc" for "https://x/y"`);
  });
});
