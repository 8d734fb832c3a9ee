import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request that went through the proxy: method, path with query, and the request body's size. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly bodyBytes: number;
  readonly status: number;
}

/** A running recording proxy. `host` is `127.0.0.1:PORT`; use it as the registry's host in references. */
export interface RecordingProxy {
  readonly host: string;
  readonly requests: RecordedRequest[];
  /** Forgets what was recorded so far. */
  reset(): void;
  /** Makes the next `count` requests matching `method` fail with 503 before reaching the registry. */
  failNext(method: string, count: number): void;
  stop(): Promise<void>;
}

/**
 * A plain HTTP reverse proxy on a free loopback port in front of a registry (`target`, e.g. the
 * docker-registry harness), recording every request and the bytes of its body. The Host header is
 * passed unchanged, so the registry's absolute `Location` URLs point back at the proxy and a
 * client never talks to the registry directly: what the proxy saw is all that was sent.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const failures = new Map<string, number>();
  const [targetHost, targetPort] = target.split(":");
  const server = createServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
    let bodyBytes = 0;
    const method = incoming.method ?? "GET";
    const path = incoming.url ?? "/";
    const failing = failures.get(method) ?? 0;
    if (failing > 0) {
      failures.set(method, failing - 1);
      incoming.resume();
      incoming.on("end", () => {
        requests.push({ method, path, bodyBytes: 0, status: 503 });
        outgoing.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "injected by the test proxy" }] }));
      });
      return;
    }
    const forward = httpRequest(
      { host: targetHost, port: Number(targetPort), method, path, headers: incoming.headers },
      (answer) => {
        requests.push({ method, path, bodyBytes, status: answer.statusCode ?? 0 });
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forward.on("error", (error) => outgoing.destroy(error));
    incoming.on("data", (chunk: Buffer) => {
      bodyBytes += chunk.byteLength;
    });
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    reset: () => {
      requests.length = 0;
    },
    failNext: (method, count) => {
      failures.set(method, count);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Bytes sent in blob upload requests (PATCH, and PUT to an upload session): layer and config bytes. */
export function uploadedBytes(requests: readonly RecordedRequest[]): number {
  return requests.filter((r) => (r.method === "PATCH" || r.method === "PUT") && r.path.includes("/blobs/uploads/")).reduce((sum, r) => sum + r.bodyBytes, 0);
}
