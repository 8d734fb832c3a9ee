import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { KilnError } from "../../solver/llb/index.js";
import { redactCredentials } from "./source-git-cli.js";

/**
 * A request of an http(s) source that got no usable answer. `status` is the final HTTP status when
 * one arrived; `retryable` says whether trying again may help (timeouts, resets, refused
 * connections, 5xx and 429), and retries read only that flag.
 */
export class HttpFetchError extends KilnError {
  readonly status: number | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: { status?: number; retryable: boolean; cause?: unknown }) {
    super("KILN_HTTP_SOURCE_FAILED", message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.retryable = options.retryable;
  }
}

/** An answer whose headers arrived: the caller reads (or destroys) `body`. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  readonly url: string;
  readonly body: IncomingMessage;
}

export interface HttpGetOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
  /** Where proxy settings come from (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, lower case too); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** No headers, or no body bytes, for this long fails the request (retryably); default 60 s. */
  readonly idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRYABLE_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * GET `url` (http or https), following up to ten redirects as Go's client does, through the proxy
 * the environment names for it (HTTP_PROXY for http, HTTPS_PROXY for https by CONNECT; NO_PROXY
 * and loopback hosts go direct). Resolves once the final answer's headers are in, whatever its
 * status: 3xx other than a redirect (304) and 4xx/5xx are the caller's to judge. A socket that
 * stays silent for `idleTimeoutMs` is destroyed with a retryable HttpFetchError; the body's
 * stream fails the same way when it stalls.
 */
export async function httpGet(url: string, options: HttpGetOptions): Promise<HttpAnswer> {
  let current = new URL(url);
  for (let hops = 0; ; hops++) {
    const answer = await getOnce(current, options);
    const location = answer.headers.location;
    if (!REDIRECTS.has(answer.status) || location === undefined) return answer;
    answer.body.resume();
    if (hops >= MAX_REDIRECTS) {
      throw new HttpFetchError(`Cannot download "${redactCredentials(url)}": it redirected more than ${MAX_REDIRECTS} times`, { status: answer.status, retryable: false });
    }
    const next = new URL(location, current);
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      throw new HttpFetchError(`Cannot download "${redactCredentials(url)}": it redirected to "${redactCredentials(next.href)}", which is not an http(s) URL`, { status: answer.status, retryable: false });
    }
    current = next;
  }
}

function getOnce(url: URL, options: HttpGetOptions): Promise<HttpAnswer> {
  const signal = options.signal;
  signal.throwIfAborted();
  const idle = options.idleTimeoutMs ?? 60_000;
  const proxy = proxyFor(url, options.env ?? process.env);
  const headers: Record<string, string> = { "user-agent": "kiln", ...options.headers };
  if (url.username !== "" || url.password !== "") {
    headers["authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
  }
  const shown = redactCredentials(url.href);
  return new Promise<HttpAnswer>((resolve, reject) => {
    let req: ClientRequest;
    const base: RequestOptions = { method: "GET", headers, signal, timeout: idle };
    if (url.protocol === "https:") {
      req = httpsRequest(url, proxy === undefined ? base : { ...base, createConnection: (_opts, done) => tunnel(proxy, url, idle, signal, done) });
    } else if (proxy === undefined) {
      req = httpRequest(url, base);
    } else {
      // A plain-http proxy is asked for the absolute URL.
      req = httpRequest({ ...base, host: proxy.hostname, port: proxy.port === "" ? 80 : Number(proxy.port), path: url.href, headers: { ...headers, host: url.host, ...proxyAuthorization(proxy) } });
    }
    req.on("timeout", () => req.destroy(new HttpFetchError(`Cannot download "${shown}": no answer within ${idle} ms`, { retryable: true })));
    req.on("error", (error) => reject(signal.aborted ? signal.reason : asFetchError(error, shown)));
    req.on("response", (res) => {
      res.setTimeout(idle, () => res.destroy(new HttpFetchError(`Cannot download "${shown}": no data for ${idle} ms`, { retryable: true })));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: url.href, body: res });
    });
    req.end();
  });
}

/** Opens a CONNECT tunnel through `proxy` to `url`'s host and hands back a TLS socket over it. */
function tunnel(proxy: URL, url: URL, idle: number, signal: AbortSignal, done: (error: Error | null, socket: Socket) => void): undefined {
  const port = url.port === "" ? 443 : url.port;
  const authority = `${url.hostname}:${port}`;
  const connect = httpRequest({
    host: proxy.hostname,
    port: proxy.port === "" ? 80 : Number(proxy.port),
    method: "CONNECT",
    path: authority,
    headers: { host: authority, ...proxyAuthorization(proxy) },
    signal,
    timeout: idle,
  });
  connect.on("timeout", () => connect.destroy(new HttpFetchError(`Cannot reach "${url.host}" through the proxy "${redactCredentials(proxy.href)}": no answer within ${idle} ms`, { retryable: true })));
  connect.on("error", (error) => done(error, undefined as unknown as Socket));
  connect.on("connect", (res, socket) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      done(new HttpFetchError(`Cannot reach "${url.host}" through the proxy "${redactCredentials(proxy.href)}": it answered CONNECT with HTTP ${res.statusCode}`, { status: res.statusCode ?? 0, retryable: (res.statusCode ?? 0) >= 500 }), undefined as unknown as Socket);
      return;
    }
    done(null, tlsConnect({ socket, ...(isIP(url.hostname) === 0 ? { servername: url.hostname } : {}) }));
  });
  connect.end();
  return undefined;
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === "" && proxy.password === "") return {};
  return { "proxy-authorization": `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}` };
}

/**
 * The proxy for `url` by Go's httpproxy rules, simplified: HTTPS_PROXY for https, HTTP_PROXY for
 * http (upper case first), none for loopback hosts or when NO_PROXY is `*` or names the host, a
 * parent domain (`example.com`, `.example.com`) or the host:port. A proxy without a scheme is http.
 */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const pick = (name: string): string | undefined => env[name] ?? env[name.toLowerCase()];
  const value = url.protocol === "https:" ? pick("HTTPS_PROXY") : pick("HTTP_PROXY");
  if (value === undefined || value === "") return undefined;
  const host = url.hostname.replace(/^\[|\]$/gu, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || /^127\./u.test(host) || host === "::1") return undefined;
  for (const raw of (pick("NO_PROXY") ?? "").split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return undefined;
    const [name = "", port] = entry.startsWith("[") ? [entry.slice(1, entry.indexOf("]")), entry.split("]:")[1]] : entry.split(":");
    if (port !== undefined && port !== (url.port === "" ? (url.protocol === "https:" ? "443" : "80") : url.port)) continue;
    const domain = name.replace(/^\*?\./u, "");
    if (host === domain || host.endsWith(`.${domain}`)) return undefined;
  }
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//iu.test(value) ? value : `http://${value}`);
  } catch {
    return undefined;
  }
}

/** A network failure as an HttpFetchError, retryable for resets, refusals and timeouts. */
export function asFetchError(error: unknown, shown: string): HttpFetchError {
  if (error instanceof HttpFetchError) return error;
  const code = typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : "";
  const why = error instanceof Error ? error.message : String(error);
  return new HttpFetchError(`Cannot download "${shown}": ${why}${code !== "" && !why.includes(code) ? ` (${code})` : ""}`, { retryable: RETRYABLE_CODES.has(code), cause: error });
}
