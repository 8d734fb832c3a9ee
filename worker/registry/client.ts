import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { isKilnError, type Digest, type ImageSpec, type Platform } from "../../solver/llb/index.js";
import type { ContentStore, StoredBlob } from "../content/content-store.js";
import { formatReference, isLoopbackDomain, MediaTypes, parseReference, withDigest, type Descriptor, type Manifest, type Reference } from "../oci/index.js";
import { pullScope, RegistryAuth } from "./auth.js";
import { dockerConfigCredentials, normalizeRegistryHost, type CredentialLookup } from "./credentials.js";
import { errorFromNetwork, errorFromResponse, RegistryError } from "./errors.js";
import { parseManifestDocument, selectManifest, type ManifestDocument } from "./resolve.js";
import { DEFAULT_RETRY_POLICY, withRetries, type RetryPolicy } from "./retry.js";

/** What the registry client accepts, in preference order (the Accept header of manifest requests). */
const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(", ");

/** Manifests and configs are small; anything bigger is refused before it fills memory. */
const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;

export interface RegistryClientOptions {
  /** Where credentials come from; default: Docker's config.json (`$DOCKER_CONFIG` or `~/.docker`). */
  readonly credentials?: CredentialLookup;
  /** Registry hosts (`host:port`) to reach over plain HTTP; loopback registries always are. */
  readonly insecure?: readonly string[];
  readonly retry?: RetryPolicy;
  /**
   * How long to wait for a response's headers, or for the next bytes of a blob download, before
   * the attempt counts as timed out and is retried (default 60 s).
   */
  readonly timeoutMs?: number;
  readonly userAgent?: string;
}

/** A manifest or index as fetched: its digest (verified), bytes, and parsed form. */
export type FetchedManifest = ManifestDocument & {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Buffer;
};

/** An image resolved for one platform: everything a build needs before touching layers. */
export interface ResolvedManifest {
  /** The reference pinned to `manifestDigest` (its tag kept). */
  readonly ref: Reference;
  readonly manifestDigest: Digest;
  readonly manifestMediaType: string;
  readonly manifest: Manifest;
  readonly manifestBytes: Buffer;
  readonly config: ImageSpec;
  readonly configDescriptor: Descriptor;
  readonly configBytes: Buffer;
  /** Set when the reference named an index; `indexBytes` are its exact bytes. */
  readonly indexDigest?: Digest;
  readonly indexBytes?: Buffer;
  readonly indexMediaType?: string;
}

/** One request of a multi-request protocol (see RegistryClient.request). */
export interface RegistryRequest {
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** A path below `/v2/<name>/` (`blobs/uploads/`) or an absolute URL (an upload's `Location`). */
  readonly url: string;
  /** The token scope(s) the request needs, space-separated (`repository:a/b:pull,push`). */
  readonly scope: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Opens the body afresh for each send (a 401 makes the client send again). */
  readonly body?: () => Buffer | Readable;
  /** What is being done, for messages: `blob "sha256:…" to "host/repo"`. */
  readonly what: string;
  /** The verb for messages (`push`); default `fetch`. */
  readonly verb?: string;
  /** Non-2xx statuses that are answers, not errors (404 for a HEAD that asks whether a blob exists). */
  readonly accept?: readonly number[];
}

export interface PullBlobOptions {
  readonly signal?: AbortSignal;
  /** Bytes received so far for this blob (restarts from 0 when an attempt is retried). */
  readonly onBytes?: (bytes: number) => void;
}

/**
 * A client of the Distribution API v2 (`/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`)
 * over Node's fetch. Speaks HTTPS, or plain HTTP to loopback and `insecure` registries only;
 * authenticates as registries ask (see RegistryAuth); retries 5xx, 429, resets and timeouts with
 * backoff. Everything it returns is verified against the digest it was asked for. One client may
 * serve many builds at once: it caches only auth tokens.
 */
export class RegistryClient {
  readonly #auth: RegistryAuth;
  readonly #insecure: ReadonlySet<string>;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #userAgent: string;

  constructor(options: RegistryClientOptions = {}) {
    this.#insecure = new Set((options.insecure ?? []).map(normalizeRegistryHost));
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#userAgent = options.userAgent ?? "kiln/0.1";
    this.#auth = new RegistryAuth({
      credentials: options.credentials ?? dockerConfigCredentials(),
      retry: this.#retry,
      allowsHttp: (host) => this.#allowsHttp(host),
      userAgent: this.#userAgent,
    });
  }

  /**
   * The manifest or index `ref` names (by digest when it has one, else by tag). A digest-pinned
   * answer must hash to that digest; a tag's answer must match the registry's
   * `Docker-Content-Digest` when it sends one.
   */
  async fetchManifest(ref: Reference | string, signal?: AbortSignal): Promise<FetchedManifest> {
    const r = typeof ref === "string" ? parseReference(ref) : ref;
    const what = `manifest "${formatReference(r)}"`;
    return withRetries(
      async () => {
        const response = await this.#get(r, `manifests/${r.digest ?? r.tag ?? "latest"}`, MANIFEST_ACCEPT, what, signal);
        const bytes = await readLimited(response, MAX_DOCUMENT_BYTES, what, signal);
        const digest = sha256Of(bytes);
        if (r.digest !== undefined && digest !== r.digest) {
          throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot fetch ${what}: the registry sent bytes that hash to "${digest}"`, { url: response.url });
        }
        const header = response.headers.get("docker-content-digest");
        if (r.digest === undefined && header !== null && header.startsWith("sha256:") && header !== digest) {
          throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot fetch ${what}: the registry says its digest is "${header}" but the bytes hash to "${digest}"`, { url: response.url });
        }
        const contentType = response.headers.get("content-type") ?? undefined;
        const doc = parseManifestDocument(bytes, contentType, what);
        const mediaType = doc.kind === "index" ? (doc.index.mediaType ?? contentType ?? MediaTypes.ociIndex) : (doc.manifest.mediaType ?? contentType ?? MediaTypes.ociManifest);
        return { ...doc, digest, mediaType: mediaType.split(";")[0]!.trim(), bytes };
      },
      this.#retryOptions(signal),
    );
  }

  /**
   * Resolves `ref` to the image manifest for `platform` (going through an index or manifest list
   * when the reference names one) and fetches its config.
   */
  async resolve(ref: Reference | string, platform: Platform, signal?: AbortSignal): Promise<ResolvedManifest> {
    const r = typeof ref === "string" ? parseReference(ref) : ref;
    const top = await this.fetchManifest(r, signal);
    let fetched = top;
    let index: { digest: Digest; bytes: Buffer; mediaType: string } | undefined;
    if (top.kind === "index") {
      index = { digest: top.digest, bytes: top.bytes, mediaType: top.mediaType };
      const chosen = selectManifest(top.index, platform, formatReference(r));
      fetched = await this.fetchManifest(withDigest(r, chosen.digest), signal);
    }
    if (fetched.kind !== "manifest") {
      throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot resolve "${formatReference(r)}": the index entry for the platform is itself an index`);
    }
    const configDescriptor = fetched.manifest.config;
    const configBytes = await this.fetchBlobBytes(r, configDescriptor, signal);
    let config: ImageSpec;
    try {
      config = JSON.parse(configBytes.toString("utf8")) as ImageSpec;
    } catch (error) {
      throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot read the config "${configDescriptor.digest}" of "${formatReference(r)}": it is not JSON`, { cause: error });
    }
    return {
      ref: withDigest(r, fetched.digest),
      manifestDigest: fetched.digest,
      manifestMediaType: fetched.mediaType,
      manifest: fetched.manifest,
      manifestBytes: fetched.bytes,
      config,
      configDescriptor,
      configBytes,
      ...(index === undefined ? {} : { indexDigest: index.digest, indexBytes: index.bytes, indexMediaType: index.mediaType }),
    };
  }

  /**
   * Opens the blob `descriptor` of `ref`'s repository as a stream. The response is checked (status,
   * retries until headers arrive) but the bytes are not: the caller verifies them, normally by
   * passing the stream to ContentStore.ingest with the descriptor's digest. The caller owns the
   * stream and must consume or destroy it.
   */
  async fetchBlob(ref: Reference | string, descriptor: Descriptor, signal?: AbortSignal): Promise<Readable> {
    const r = typeof ref === "string" ? parseReference(ref) : ref;
    const what = `blob "${descriptor.digest}" of "${r.domain}/${r.path}"`;
    const response = await withRetries(() => this.#get(r, `blobs/${descriptor.digest}`, "*/*", what, signal), this.#retryOptions(signal));
    if (response.body === null) return Readable.from([]);
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  }

  /** A small blob (a config) in memory, verified against its digest and size. */
  async fetchBlobBytes(ref: Reference | string, descriptor: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    const r = typeof ref === "string" ? parseReference(ref) : ref;
    const what = `blob "${descriptor.digest}" of "${r.domain}/${r.path}"`;
    return withRetries(async () => {
      const response = await this.#get(r, `blobs/${descriptor.digest}`, "*/*", what, signal);
      const bytes = await readLimited(response, MAX_DOCUMENT_BYTES, what, signal);
      const digest = sha256Of(bytes);
      if (digest !== descriptor.digest || bytes.byteLength !== descriptor.size) {
        throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot fetch ${what}: received ${bytes.byteLength} bytes that hash to "${digest}", expected ${descriptor.size} bytes`, { url: response.url });
      }
      return bytes;
    }, this.#retryOptions(signal));
  }

  /**
   * Downloads a blob into `content`, verifying digest and size before it becomes visible. A
   * download that fails with a retryable error (a reset mid-stream, a 5xx) starts over; a digest
   * mismatch is not retried.
   */
  async pullBlob(ref: Reference | string, descriptor: Descriptor, content: ContentStore, options: PullBlobOptions = {}): Promise<StoredBlob> {
    const r = typeof ref === "string" ? parseReference(ref) : ref;
    const what = `blob "${descriptor.digest}" of "${r.domain}/${r.path}"`;
    return withRetries(async () => {
      // A download that stops sending bytes is abandoned after the stall timeout and retried.
      const stalled = new AbortController();
      let timer = setTimeout(() => stalled.abort(), this.#timeoutMs);
      const signal = options.signal === undefined ? stalled.signal : AbortSignal.any([options.signal, stalled.signal]);
      const onBytes = options.onBytes;
      try {
        const stream = await this.fetchBlob(r, descriptor, signal);
        return await content.ingest(stream, {
          expected: descriptor.digest,
          expectedSize: descriptor.size,
          signal,
          onBytes: (bytes) => {
            clearTimeout(timer);
            timer = setTimeout(() => stalled.abort(), this.#timeoutMs);
            onBytes?.(bytes);
          },
        });
      } catch (error) {
        if (options.signal?.aborted === true) throw options.signal.reason;
        if (stalled.signal.aborted) {
          throw new RegistryError("KILN_REGISTRY_UNREACHABLE", `Cannot fetch ${what}: no data arrived for ${this.#timeoutMs} ms`, { retryable: true, cause: error });
        }
        // Errors raised by the body stream are network failures mid-download; content errors are not.
        if (isStreamFailure(error)) throw errorFromNetwork(error, what, r.domain);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    }, this.#retryOptions(options.signal));
  }

  /** The retry policy this client uses, for callers that drive multi-request protocols (push). */
  get retryPolicy(): RetryPolicy {
    return this.#retry;
  }

  /**
   * One authenticated request of any method to `ref`'s repository, for protocols built on top of
   * the client (push: HEAD, POST, PATCH, PUT). `url` is a path below `/v2/<name>/` or an absolute
   * URL (an upload's `Location`). Auth is as for pulls, with `scope` (several space-separated
   * scopes allowed); on 401 the challenge is answered once and the request repeated, so `body` is
   * an opener called once per send. A send that makes no progress (no response headers, no body
   * bytes taken) for the client's timeout fails as a retryable error. Not retried here: callers
   * wrap whole protocol steps in `withRetries`. Resolves with the response when its status is 2xx
   * or listed in `accept` (the caller reads or cancels its body); throws RegistryError otherwise.
   */
  async request(ref: Reference, request: RegistryRequest, signal?: AbortSignal): Promise<Response> {
    const url = /^https?:\/\//.test(request.url) ? request.url : `${this.baseUrl(ref.domain)}${ref.path}/${request.url}`;
    const verb = request.verb ?? "fetch";
    let challenged = false;
    for (;;) {
      const authorization = await this.#auth.authorization(ref.domain, request.scope);
      const headers: Record<string, string> = { "user-agent": this.#userAgent, ...request.headers };
      if (authorization !== undefined) headers["authorization"] = authorization;
      const response = await this.#send(url, request.method, headers, request.body?.(), request.what, verb, signal);
      if (response.status === 401 && !challenged) {
        challenged = true;
        const header = response.headers.get("www-authenticate");
        await response.body?.cancel();
        if (await this.#auth.respondToChallenge(ref.domain, request.scope, header, { sent: authorization, ...(signal === undefined ? {} : { signal }) })) continue;
        throw new RegistryError(
          "KILN_REGISTRY_UNAUTHORIZED",
          `Cannot ${verb} ${request.what}: the registry "${ref.domain}" requires authentication and kiln has no credentials for it; add them to ~/.docker/config.json ("auths")`,
          { status: 401, url },
        );
      }
      if (response.ok || request.accept?.includes(response.status) === true) return response;
      throw await errorFromResponse(response, request.what, url, verb);
    }
  }

  /** The base URL of a registry's API: HTTPS, or HTTP for loopback and insecure hosts. */
  baseUrl(domain: string): string {
    const host = domain === "docker.io" ? "registry-1.docker.io" : domain;
    return `${this.#allowsHttp(domain) ? "http" : "https"}://${host}/v2/`;
  }

  #allowsHttp(host: string): boolean {
    return isLoopbackDomain(host) || this.#insecure.has(normalizeRegistryHost(host));
  }

  #retryOptions(signal: AbortSignal | undefined): { policy: RetryPolicy; signal?: AbortSignal } {
    return { policy: this.#retry, ...(signal === undefined ? {} : { signal }) };
  }

  /**
   * One GET of `/v2/<path>/<rest>` with auth: anonymous or with what the host asked for before;
   * on 401, answer the challenge once and repeat. Resolves with a 2xx response whose body the
   * caller reads; throws RegistryError otherwise (retryable per status).
   */
  async #get(ref: Reference, rest: string, accept: string, what: string, signal: AbortSignal | undefined): Promise<Response> {
    const url = `${this.baseUrl(ref.domain)}${ref.path}/${rest}`;
    const scope = pullScope(ref.path);
    let challenged = false;
    for (;;) {
      const authorization = await this.#auth.authorization(ref.domain, scope);
      const headers: Record<string, string> = { accept, "user-agent": this.#userAgent };
      if (authorization !== undefined) headers["authorization"] = authorization;
      const response = await this.#fetch(url, headers, what, signal);
      if (response.status === 401 && !challenged) {
        challenged = true;
        const header = response.headers.get("www-authenticate");
        await response.body?.cancel();
        if (await this.#auth.respondToChallenge(ref.domain, scope, header, { sent: authorization, ...(signal === undefined ? {} : { signal }) })) continue;
        throw new RegistryError(
          "KILN_REGISTRY_UNAUTHORIZED",
          `Cannot fetch ${what}: the registry "${ref.domain}" requires authentication and kiln has no credentials for it; add them to ~/.docker/config.json ("auths")`,
          { status: 401, url },
        );
      }
      if (!response.ok) {
        const error = await errorFromResponse(response, what, url);
        if (error.status === 401 && !(await this.#auth.hasCredentials(ref.domain))) {
          throw new RegistryError("KILN_REGISTRY_UNAUTHORIZED", `${error.message}; kiln has no credentials for "${ref.domain}" in ~/.docker/config.json`, {
            status: 401,
            diagnostics: error.diagnostics,
            url,
          });
        }
        throw error;
      }
      return response;
    }
  }

  /** fetch with a deadline for the response headers; a missed deadline is a retryable error, the caller's abort is not. */
  async #fetch(url: string, headers: Record<string, string>, what: string, signal: AbortSignal | undefined): Promise<Response> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.#timeoutMs);
    try {
      return await fetch(url, { headers, redirect: "follow", signal: signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]) });
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      if (deadline.signal.aborted) {
        throw new RegistryError("KILN_REGISTRY_UNREACHABLE", `Cannot fetch ${what} from "${url}": no response within ${this.#timeoutMs} ms`, { retryable: true, url, cause: error });
      }
      throw errorFromNetwork(error, what, url);
    } finally {
      clearTimeout(timer);
    }
  }

  /** fetch with a body; the deadline restarts whenever the body makes progress, so big uploads are not cut off. */
  async #send(url: string, method: string, headers: Record<string, string>, body: Buffer | Readable | undefined, what: string, verb: string, signal: AbortSignal | undefined): Promise<Response> {
    const deadline = new AbortController();
    let timer = setTimeout(() => deadline.abort(), this.#timeoutMs);
    const progress = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => deadline.abort(), this.#timeoutMs);
    };
    let sent: RequestInit["body"];
    if (body instanceof Readable) {
      // undici takes an async iterable as a streamed body (with `duplex: "half"`).
      sent = (async function* () {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          progress();
          yield chunk;
        }
      })() as unknown as RequestInit["body"];
    } else sent = body;
    try {
      return await fetch(url, {
        method,
        headers,
        redirect: "follow",
        ...(sent === undefined ? {} : { body: sent, duplex: "half" }),
        signal: signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]),
      } as RequestInit);
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      if (signal?.aborted === true) throw signal.reason;
      if (deadline.signal.aborted) {
        throw new RegistryError("KILN_REGISTRY_UNREACHABLE", `Cannot ${verb} ${what} ${verb === "fetch" ? "from" : "to"} "${url}": no progress for ${this.#timeoutMs} ms`, { retryable: true, url, cause: error });
      }
      throw errorFromNetwork(error, what, url, verb);
    } finally {
      clearTimeout(timer);
    }
  }
}

function sha256Of(bytes: Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
}

/** Whether an error came from the network under a body stream (undici's socket errors, resets). */
function isStreamFailure(error: unknown): boolean {
  if (typeof error !== "object" || error === null || isKilnError(error)) return false;
  const e = error as { code?: unknown; cause?: unknown };
  const code = typeof e.code === "string" ? e.code : undefined;
  if (code !== undefined && (code.startsWith("UND_ERR") || code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT")) return true;
  if (error instanceof TypeError && error.message === "terminated") return true;
  return e.cause !== undefined && isStreamFailure(e.cause);
}

async function readLimited(response: Response, limit: number, what: string, signal: AbortSignal | undefined): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot fetch ${what}: it is ${declared} bytes, more than the ${limit} kiln reads for a manifest or config`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (response.body !== null) {
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > limit) throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot fetch ${what}: it is more than the ${limit} bytes kiln reads for a manifest or config`);
        chunks.push(Buffer.from(chunk));
      }
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      if (error instanceof RegistryError) throw error;
      throw errorFromNetwork(error, what, response.url);
    }
  }
  return Buffer.concat(chunks);
}
