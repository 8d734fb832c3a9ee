import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../solver/llb/index.js";
import { ContentStore } from "../content/content-store.js";
import { MediaTypes } from "../oci/index.js";
import { RegistryClient } from "./client.js";
import { staticCredentials } from "./credentials.js";
import { RegistryError } from "./errors.js";
import { withRetries } from "./retry.js";

const BLOB = Buffer.alloc(256 * 1024, 7);
const BLOB_DIGEST = sha256(BLOB);

/**
 * A tiny HTTP server that plays a registry serving one manifest at `/v2/repo/manifests/<script>`,
 * where the script's letters say what each successive request to that path gets: `5` a 503,
 * `4` a 404, `t` a 429, `r` a dropped connection, `k` the manifest; and one blob whose first
 * download breaks off mid-body. Counts requests per path.
 */
function startScriptedRegistry(): Promise<{ server: Server; host: string; hits: Map<string, number> }> {
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: sha256("{}"), size: 2 },
    layers: [],
  });
  const hits = new Map<string, number>();
  const server = createServer((request, response) => {
    const path = request.url ?? "";
    const n = hits.get(path) ?? 0;
    hits.set(path, n + 1);
    if (path === `/v2/stalled/blobs/${BLOB_DIGEST}`) {
      // Half the blob, then nothing: only the client's cancellation ends this download.
      response.writeHead(200, { "content-length": String(BLOB.byteLength) });
      response.write(BLOB.subarray(0, BLOB.byteLength / 2));
      return;
    }
    if (path === `/v2/repo/blobs/${BLOB_DIGEST}`) {
      // The first download breaks off half way; the second is whole.
      response.writeHead(200, { "content-length": String(BLOB.byteLength) });
      if (n === 0) response.write(BLOB.subarray(0, BLOB.byteLength / 2), () => request.socket.destroy());
      else response.end(BLOB);
      return;
    }
    const script = path.split("/").pop() ?? "";
    const step = script[Math.min(n, script.length - 1)];
    switch (step) {
      case "5":
        response.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "try later" }] }));
        return;
      case "4":
        response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
        return;
      case "t":
        response.writeHead(429).end();
        return;
      case "r":
        request.socket.destroy();
        return;
      default:
        response.writeHead(200, { "content-type": MediaTypes.ociManifest }).end(manifest);
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    resolve({ server, host: `127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`, hits });
  }));
}

describe("retries against a scripted registry", () => {
  let fake: Awaited<ReturnType<typeof startScriptedRegistry>>;
  const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 } });
  const hitsOf = (script: string): number | undefined => fake.hits.get(`/v2/repo/manifests/${script}`);

  beforeAll(async () => {
    fake = await startScriptedRegistry();
  });
  afterAll(async () => {
    await new Promise((resolve) => fake.server.close(resolve));
  });

  it("retries 503 until the registry answers", async () => {
    const fetched = await client.fetchManifest(`${fake.host}/repo:55k`);
    expect(fetched.kind).toBe("manifest");
    expect(hitsOf("55k")).toBe(3);
  });

  it("retries 429 and a dropped connection", async () => {
    await client.fetchManifest(`${fake.host}/repo:trk`);
    expect(hitsOf("trk")).toBe(3);
  });

  it("never retries a 404", async () => {
    const error = await client.fetchManifest(`${fake.host}/repo:4k`).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_NOT_FOUND");
    expect(hitsOf("4k")).toBe(1);
  });

  it("gives up after the policy's attempts with the last error, still marked retryable", async () => {
    const error = await client.fetchManifest(`${fake.host}/repo:5`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).status).toBe(503);
    expect((error as RegistryError).retryable).toBe(true);
    expect((error as RegistryError).diagnostics).toEqual([{ code: "UNAVAILABLE", message: "try later" }]);
    expect(hitsOf("5")).toBe(4);
  });

  it("reports a dropped connection that never recovers as an unreachable registry", async () => {
    const error = await client.fetchManifest(`${fake.host}/repo:r`).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_UNREACHABLE");
    expect(hitsOf("r")).toBe(4);
  });
});

describe("pullBlob() against a registry that drops a download mid-body", () => {
  it("starts the download over and stores the verified blob", async () => {
    const fake = await startScriptedRegistry();
    const dir = await mkdtemp(join(tmpdir(), "kiln-retry-blob-"));
    try {
      const content = await ContentStore.open(dir);
      const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
      await client.pullBlob(`${fake.host}/repo:k`, { mediaType: MediaTypes.ociLayer, digest: BLOB_DIGEST, size: BLOB.byteLength }, content);
      expect(await content.has(BLOB_DIGEST)).toBe(true);
      expect(fake.hits.get(`/v2/repo/blobs/${BLOB_DIGEST}`)).toBe(2);
    } finally {
      await new Promise((resolve) => fake.server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("pullBlob() cancelled mid-download", () => {
  it("rejects with the abort reason, stops the transfer and leaves no temp file", async () => {
    const fake = await startScriptedRegistry();
    const dir = await mkdtemp(join(tmpdir(), "kiln-cancel-blob-"));
    try {
      const content = await ContentStore.open(dir);
      const client = new RegistryClient({ credentials: staticCredentials({}), retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
      const controller = new AbortController();
      const reason = new Error("build cancelled");
      const pulling = client.pullBlob(`${fake.host}/stalled:k`, { mediaType: MediaTypes.ociLayer, digest: BLOB_DIGEST, size: BLOB.byteLength }, content, {
        signal: controller.signal,
        onBytes: () => controller.abort(reason),
      });
      await expect(pulling).rejects.toBe(reason);
      expect(await readdir(join(dir, "ingest"))).toEqual([]);
      expect(await content.has(BLOB_DIGEST)).toBe(false);
      expect(fake.hits.get(`/v2/stalled/blobs/${BLOB_DIGEST}`)).toBe(1);
    } finally {
      fake.server.closeAllConnections();
      await new Promise((resolve) => fake.server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("pullBlob() from a registry that stops sending", () => {
  it("abandons each stalled attempt, retries, and then fails as unreachable", async () => {
    const fake = await startScriptedRegistry();
    const dir = await mkdtemp(join(tmpdir(), "kiln-stall-blob-"));
    try {
      const content = await ContentStore.open(dir);
      const client = new RegistryClient({ credentials: staticCredentials({}), timeoutMs: 1000, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
      const error = await client.pullBlob(`${fake.host}/stalled:k`, { mediaType: MediaTypes.ociLayer, digest: BLOB_DIGEST, size: BLOB.byteLength }, content).catch((e: unknown) => e);
      expect((error as RegistryError).code).toBe("KILN_REGISTRY_UNREACHABLE");
      expect((error as Error).message).toBe(`Cannot fetch blob "${BLOB_DIGEST}" of "${fake.host}/stalled": no data arrived for 1000 ms`);
      expect(fake.hits.get(`/v2/stalled/blobs/${BLOB_DIGEST}`)).toBe(2);
      expect(await readdir(join(dir, "ingest"))).toEqual([]);
    } finally {
      fake.server.closeAllConnections();
      await new Promise((resolve) => fake.server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("withRetries()", () => {
  it("does not retry errors that are not retryable RegistryErrors, whatever their message", async () => {
    let calls = 0;
    const failing = withRetries(async () => {
      calls++;
      throw new Error("503 Service Unavailable");
    }, { policy: { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 } });
    await expect(failing).rejects.toThrow("503 Service Unavailable");
    expect(calls).toBe(1);
  });

  it("stops retrying once the signal is aborted", async () => {
    const controller = new AbortController();
    let calls = 0;
    const failing = withRetries(async () => {
      calls++;
      controller.abort(new Error("cancelled"));
      throw new RegistryError("KILN_REGISTRY_REQUEST_FAILED", "Cannot fetch x: the registry answered HTTP 500", { status: 500, retryable: true });
    }, { policy: { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 }, signal: controller.signal });
    await expect(failing).rejects.toBeInstanceOf(RegistryError);
    expect(calls).toBe(1);
  });
});
