import { readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest, createServer, type IncomingMessage, type ServerResponse } from "node:http";

/**
 * A loopback forwarder to the Debian mirror this machine's apt already uses, so that debootstrap
 * and the `apt-get install` workload see only `http://127.0.0.1:PORT/` and the mirror's address is
 * never written into any file (not the base image's sources.list, not a Dockerfile, not a build
 * arg recorded in image history). The upstream is read from apt's deb822 sources at start-up.
 *
 * Usage: node apt-proxy.js PORT_FILE [SOURCES_FILE]. Listens on 127.0.0.1 (a free port), writes
 * the port to PORT_FILE, and forwards `GET /x` to `UPSTREAM/x` for the first `URIs:` entry.
 */

const DEFAULT_SOURCES = "/etc/apt/sources.list.d/debian.sources";

/** The first `URIs:` value of a deb822 sources file, without a trailing slash. */
export function firstMirror(sourcesText: string): URL {
  const match = /^URIs:\s*(\S+)/m.exec(sourcesText);
  if (match?.[1] === undefined) throw new Error("Cannot find a URIs: line in apt's sources: the apt proxy needs an upstream mirror");
  const url = new URL(match[1]);
  if (url.protocol !== "http:") throw new Error(`Cannot forward to "${url.protocol}" mirrors: the apt proxy speaks plain HTTP only`);
  return url;
}

function forward(upstream: URL, req: IncomingMessage, res: ServerResponse): void {
  const base = upstream.pathname.replace(/\/$/, "");
  const path = `${base}${req.url ?? "/"}`;
  const headers = { ...req.headers, host: upstream.host };
  const out = httpRequest(
    { host: upstream.hostname, port: upstream.port || 80, method: req.method, path, headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  out.on("error", (error) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end(`apt proxy: ${error.message}\n`);
  });
  req.pipe(out);
}

/** A running forwarder: its loopback port, and how to stop it. */
export interface AptProxy {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the forwarder in this process on 127.0.0.1 (a free port), to the first mirror of apt's
 * `sourcesFile`. The debootstrap test uses it this way; `main` below is the same as a process.
 */
export function startAptProxy(sourcesFile = DEFAULT_SOURCES): Promise<AptProxy> {
  const upstream = firstMirror(readFileSync(sourcesFile, "utf8"));
  const server = createServer((req, res) => forward(upstream, req, res));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("The apt proxy has no TCP address"));
      resolve({
        port: address.port,
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

function main(): void {
  const portFile = process.argv[2];
  if (portFile === undefined) throw new Error("Usage: apt-proxy.js PORT_FILE [SOURCES_FILE]");
  void startAptProxy(process.argv[3] ?? DEFAULT_SOURCES).then((proxy) => writeFileSync(portFile, `${proxy.port}\n`));
  process.on("SIGTERM", () => process.exit(0));
}

if (process.argv[1]?.endsWith("apt-proxy.js") === true) main();
