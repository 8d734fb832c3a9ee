import { createHash } from "node:crypto";
import { lstat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { layerTar } from "../../worker/snapshotter/testing/layer-tar.js";
import { buildImage } from "../harness/built-image.js";
import { createScratch, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/** A file the test server serves: its bytes, ETag and Last-Modified. */
interface Served {
  body: Buffer;
  etag: string;
  lastModified: string;
}

describe("ADD of an http(s) URL", () => {
  let scratch: Scratch;
  let server: Server;
  let base: string;
  const files = new Map<string, Served>();
  /** Full (200) answers per path: a 304 does not count. */
  const downloads = new Map<string, number>();

  beforeAll(async () => {
    scratch = await createScratch();
    server = createServer((req, res) => {
      const path = req.url ?? "/";
      const served = files.get(path);
      if (served === undefined) {
        res.writeHead(404).end();
        return;
      }
      const headers = { etag: served.etag, "last-modified": served.lastModified };
      if (req.headers["if-none-match"]?.split(",").map((s) => s.trim()).includes(served.etag)) {
        res.writeHead(304, headers).end();
        return;
      }
      downloads.set(path, (downloads.get(path) ?? 0) + 1);
      res.writeHead(200, { ...headers, "content-length": String(served.body.length) }).end(served.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await scratch.dispose();
  });

  const serve = (path: string, body: string | Buffer, etag: string): void => {
    files.set(path, { body: Buffer.from(body), etag: `"${etag}"`, lastModified: "Tue, 14 Nov 2023 22:13:20 GMT" });
  };
  const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

  test("adds a URL as a 0600 file with Last-Modified as mtime, and a pinned URL with --chmod", async () => {
    serve("/f.txt", "from the web\n", "f1");
    serve("/pinned.txt", "pinned\n", "p1");
    const context = await scratch.context("url", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        `ADD ${base}/f.txt /f`,
        `ADD --chmod=644 --checksum=${sha("pinned\n")} ${base}/pinned.txt /pinned`,
        `ADD ${base}/f.txt /dir/`,
        "RUN stat -c '%n %a %u:%g %Y' /f /pinned /dir/f.txt > /stats",
        "",
      ].join("\n"),
    });
    const image = await buildImage(scratch, "url", context);
    expect(await image.read("f")).toBe("from the web\n");
    expect(await image.read("pinned")).toBe("pinned\n");
    expect(await image.read("stats")).toBe("/f 600 0:0 1700000000\n/pinned 644 0:0 1700000000\n/dir/f.txt 600 0:0 1700000000\n");
  });

  test("a wrong --checksum fails the build, naming the URL and both digests", async () => {
    serve("/wrong.txt", "actual\n", "w1");
    const expected = sha("expected\n");
    const context = await scratch.context("url-wrong", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, `ADD --checksum=${expected} ${base}/wrong.txt /w`, ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`Cannot use the download of "${base}/wrong.txt": its content has the digest ${sha("actual\n")}, but --checksum expects ${expected}`);
  });

  test("a URL that answers 404 fails the build with the URL and the status", async () => {
    const context = await scratch.context("url-404", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, `ADD ${base}/nowhere.txt /n`, ""].join("\n"),
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`Cannot download "${base}/nowhere.txt": the server answered HTTP 404 Not Found`);
  });

  test("ADD --unpack=true unpacks a tar archive from a URL; without it the archive stays a file", async () => {
    serve("/app.tgz", gzipSync(await layerTar([{ name: "app/run.sh", content: "#!/bin/sh\n", mode: 0o755 }])), "a1");
    const context = await scratch.context("url-unpack", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, `ADD --unpack=true ${base}/app.tgz /opt/`, `ADD ${base}/app.tgz /packed/`, ""].join("\n"),
    });
    const image = await buildImage(scratch, "url-unpack", context);
    expect(await image.read("opt/app/run.sh")).toBe("#!/bin/sh\n");
    expect((await lstat(join(image.rootfs, "packed/app.tgz"))).isFile()).toBe(true);
  });

  test("a rebuild finds an unchanged URL CACHED without downloading it again, and re-runs the ADD when the served file changes", async () => {
    const root = join(scratch.dir, "cache-root");
    serve("/cached.txt", "version 1\n", "c1");
    const context = await scratch.context("url-cache", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, `ADD ${base}/cached.txt /c`, ""].join("\n"),
    });
    const status = async (): Promise<string> => {
      const run = await runKiln(root, ["build", "--progress", "rawjson", context]);
      expect(run.code, run.stderr).toBe(0);
      let out = "";
      for (const event of progressEvents(run.stderr)) {
        if (!("name" in event) || !/^\[[^\]]*\] ADD /u.test(event.name)) continue;
        if (event.type === "vertex.cached") out = "cached";
        if (event.type === "vertex.started") out = "ran";
      }
      return out;
    };
    expect(await status()).toBe("ran");
    expect(await status()).toBe("cached");
    expect(downloads.get("/cached.txt")).toBe(1);
    serve("/cached.txt", "version 2\n", "c2");
    expect(await status()).toBe("ran");
    expect(downloads.get("/cached.txt")).toBe(2);
  });
});
