import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, lchown, utimes } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { canonicalJson, digestHex, KilnError, sha256, type Digest } from "../../solver/llb/index.js";
import type { CacheMap, OpContext, OpRunner, ResultRef, SolverVertex } from "../../solver/op.js";
import { withRetries, type RetryPolicy } from "../registry/retry.js";
import type { ActiveSnapshot, Snapshotter } from "../snapshotter/types.js";
import { redactCredentials } from "./source-git-cli.js";
import { HttpFetchError, httpGet, type HttpAnswer } from "./source-http-fetch.js";
import { HttpDownloadRecord, type HttpDownload } from "./source-http-record.js";

/** An http(s) source op with attrs kiln cannot read (a malformed checksum, mode or id). */
export class HttpSourceError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_HTTP_SOURCE_INVALID", message, options);
  }
}

/** The downloaded bytes are not what `--checksum` (http.checksum) pins. */
export class HttpChecksumMismatchError extends KilnError {
  readonly expected: string;
  readonly actual: string;

  constructor(url: string, expected: string, actual: string) {
    super("KILN_HTTP_CHECKSUM_MISMATCH", `Cannot use the download of "${redactCredentials(url)}": its content has the digest ${actual}, but --checksum expects ${expected}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** An `http://` or `https://` source op read back: BuildKit's HTTPIdentifier fields that kiln acts on. */
export interface HttpSourceSpec {
  readonly url: string;
  /** `http.filename`; empty: from Content-Disposition, else the URL's last path segment. */
  readonly filename: string;
  /** `http.checksum` (`sha256:…`, `sha384:…` or `sha512:…`), or undefined. */
  readonly checksum: string | undefined;
  /** `http.perm`; 0 means BuildKit's default 0600. */
  readonly perm: number;
  readonly uid: number;
  readonly gid: number;
}

export interface HttpSourceDeps {
  readonly snapshotter: Snapshotter;
  /** The worker's state directory: what earlier downloads said (ETag, Last-Modified) is kept in `http/` below it. */
  readonly stateDir: string;
  /** Proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default: four tries with a backoff from half a second. */
  readonly retry?: RetryPolicy;
  /** No bytes for this long fails an attempt (retryably); default 60 s. */
  readonly idleTimeoutMs?: number;
}

/** What a download of the URL gave: the file's name, content digest and time, and the snapshot holding it when there is one. */
interface Resolved {
  readonly digest: Digest;
  readonly filename: string;
  readonly lastModified: string | undefined;
  readonly snapshot: string;
}

/** One attempt's file: its digests and what the answer said about it. */
interface Downloaded {
  readonly digest: Digest;
  /** The digest in the algorithm of `http.checksum` (the sha256 one when there is none). */
  readonly checksum: string;
  readonly filename: string;
  readonly lastModified: string | undefined;
  readonly etag: string | undefined;
}

/** A 304 answer, with the ETag it carried. */
interface NotModified {
  readonly notModified: string | undefined;
}

const CHECKSUM = /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/u;
const RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 4000 };

/** Reads the identifier (the URL itself) and the `http.*` attrs of a source op. */
export function parseHttpSource(identifier: string, attrs: Readonly<Record<string, string>>): HttpSourceSpec {
  if (!identifier.startsWith("http://") && !identifier.startsWith("https://")) {
    throw new HttpSourceError(`Cannot read "${redactCredentials(identifier)}" as an http source: it is not an http:// or https:// URL`);
  }
  try {
    new URL(identifier);
  } catch (error) {
    throw new HttpSourceError(`Cannot read "${redactCredentials(identifier)}" as an http source: it is not a valid URL`, { cause: error });
  }
  const checksum = attrs["http.checksum"];
  if (checksum !== undefined && !CHECKSUM.test(checksum)) {
    throw new HttpSourceError(`Cannot use the checksum "${checksum}" for "${redactCredentials(identifier)}": it should be "sha256:" and 64 hex digits (or a sha384 or sha512 digest)`);
  }
  const integer = (key: string): number => {
    const text = attrs[key];
    if (text === undefined) return 0;
    const value = goInteger(text);
    if (value === undefined || value < 0) throw new HttpSourceError(`Cannot read attr "${key}" of "${redactCredentials(identifier)}": "${text}" is not a non-negative integer`);
    return value;
  };
  return { url: identifier, filename: attrs["http.filename"] ?? "", checksum, perm: integer("http.perm"), uid: integer("http.uid"), gid: integer("http.gid") };
}

/**
 * The runner of an `http://` or `https://` source op (ADD of a URL), after BuildKit's http source.
 *
 * Cache map: with `http.checksum` the checksum itself, no network. Without one the URL is
 * downloaded (as BuildKit does while computing the cache key) and the key is the sha256 of the
 * bytes, with the file name, mode, owner and Last-Modified time. Earlier downloads are
 * remembered under the state directory with their ETag and Last-Modified, by a hash of the URL
 * and the file options: the request carries `If-None-Match`, and a 304 reuses the snapshot made
 * before, so an unchanged URL is downloaded once across builds; a download whose bytes, name and
 * time equal a remembered one reuses that snapshot too.
 *
 * Run: the snapshot the cache map made (or, with a checksum, a remembered download with that
 * sha256, else a new download verified against it: HttpChecksumMismatchError names the URL and
 * both digests). The snapshot holds one file named by `http.filename`, else Content-Disposition,
 * else the URL's last path segment (`__unnamed__` when it has none), with mode `http.perm`
 * (default 0600), owner `http.uid`:`http.gid` (default 0:0) and mtime from Last-Modified (else
 * the epoch). Redirects are followed; a non-2xx answer fails with the URL and status; timeouts,
 * resets and 5xx/429 answers are retried with backoff; HTTP(S)_PROXY and NO_PROXY of this
 * process are honoured.
 */
export function createHttpSourceRunner(deps: HttpSourceDeps, vertex: SolverVertex): OpRunner {
  const op = vertex.op;
  if (op.kind !== "source") throw new HttpSourceError(`Cannot run vertex "${vertex.digest}" as an http source: it is not a source op`);
  const spec = parseHttpSource(op.identifier, op.attrs);
  const recordDir = join(deps.stateDir, "http");
  const recordKey = digestHex(sha256(canonicalJson({ url: spec.url, filename: spec.filename, perm: spec.perm, uid: spec.uid, gid: spec.gid }))).slice(0, 32);
  const shown = redactCredentials(spec.url);
  let resolved: Promise<Resolved> | undefined;

  /** Downloads into a new snapshot (or reuses a remembered one) and records it. */
  const fetchInto = async (context: OpContext, conditional: readonly HttpDownload[]): Promise<Resolved | NotModified> => {
    const active = await deps.snapshotter.prepare(null);
    let committed = false;
    try {
      const got = await withRetries(() => download(active, context, conditional), {
        policy: deps.retry ?? RETRY,
        signal: context.signal,
        retryable: (error) => error instanceof HttpFetchError && error.retryable,
        onRetry: (attempt, error) => context.progress.log("stderr", `Retrying "${shown}" after attempt ${attempt} failed: ${(error as Error).message}\n`),
      });
      if ("notModified" in got) return got;
      if (spec.checksum !== undefined && got.checksum !== spec.checksum) throw new HttpChecksumMismatchError(spec.url, spec.checksum, got.checksum);
      const record = await HttpDownloadRecord.open(recordDir, recordKey);
      const same = await firstExisting(record.downloads.filter((d) => d.digest === got.digest && d.filename === got.filename && d.lastModified === got.lastModified));
      const snapshot = same?.snapshot ?? (await deps.snapshotter.commit(active));
      committed = same === undefined;
      const entry: HttpDownload = {
        digest: got.digest, filename: got.filename, snapshot,
        ...(got.etag === undefined ? {} : { etag: got.etag }), ...(got.lastModified === undefined ? {} : { lastModified: got.lastModified }),
      };
      await record.add(entry);
      return { digest: got.digest, filename: got.filename, lastModified: got.lastModified, snapshot };
    } finally {
      if (!committed) await deps.snapshotter.abort(active).catch(() => {});
    }
  };

  /** One attempt: GET (conditional on `known` ETags) and write the body into `active`. */
  const download = async (active: ActiveSnapshot, context: OpContext, known: readonly HttpDownload[]): Promise<Downloaded | NotModified> => {
    const etags = [...new Set(known.map((d) => d.etag).filter((e) => e !== undefined))];
    const answer = await httpGet(spec.url, {
      signal: context.signal,
      ...(etags.length === 0 ? {} : { headers: { "if-none-match": etags.map(quoteEtag).join(", ") } }),
      ...(deps.env === undefined ? {} : { env: deps.env }),
      ...(deps.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: deps.idleTimeoutMs }),
    });
    if (answer.status === 304 && etags.length > 0) {
      answer.body.resume();
      return { notModified: header(answer, "etag")?.replace(/^W\//u, "") };
    }
    if (answer.status < 200 || answer.status > 299) {
      answer.body.resume();
      throw new HttpFetchError(`Cannot download "${shown}": the server answered HTTP ${answer.status}${answer.body.statusMessage ? ` ${answer.body.statusMessage}` : ""}`, {
        status: answer.status,
        retryable: answer.status >= 500 || answer.status === 429,
      });
    }
    const filename = fileName(spec, answer);
    const written = await writeBody(answer, join(active.upperdir, filename), context, shown, spec.checksum?.split(":")[0] ?? "sha256");
    const lastModified = httpTime(header(answer, "last-modified"));
    const seconds = lastModified === undefined ? 0 : Date.parse(lastModified) / 1000;
    const path = join(active.upperdir, filename);
    await chmod(path, spec.perm === 0 ? 0o600 : spec.perm);
    if (spec.uid !== 0 || spec.gid !== 0) await lchown(path, spec.uid, spec.gid);
    await utimes(path, seconds, seconds);
    const etag = header(answer, "etag")?.replace(/^W\//u, "");
    return { ...written, filename, lastModified, etag };
  };

  /** Without a checksum: what the URL holds now, memoized for this vertex. */
  const resolve = (context: OpContext): Promise<Resolved> => {
    resolved ??= (async () => {
      const record = await HttpDownloadRecord.open(recordDir, recordKey);
      const known = await existing(record.downloads.filter((d) => d.etag !== undefined));
      const first = await fetchInto(context, known);
      if (!("notModified" in first)) return first;
      // A 304 names the ETag it matched; one without an ETag answers the only ETag asked about (BuildKit's rule).
      const etag = first.notModified ?? (known.length === 1 ? known[0]?.etag : undefined);
      const match = known.find((d) => d.etag === etag);
      if (match !== undefined) return { digest: match.digest, filename: match.filename, lastModified: match.lastModified, snapshot: match.snapshot };
      return unconditional(context);
    })();
    resolved.catch(() => (resolved = undefined));
    return resolved;
  };

  const unconditional = async (context: OpContext): Promise<Resolved> => {
    const got = await fetchInto(context, []);
    if ("notModified" in got) throw new HttpFetchError(`Cannot download "${shown}": the server answered 304 Not Modified to a request without conditions`, { status: 304, retryable: false });
    return got;
  };

  const existing = async (downloads: readonly HttpDownload[]): Promise<HttpDownload[]> => {
    const out: HttpDownload[] = [];
    for (const d of downloads) if (await deps.snapshotter.exists(d.snapshot)) out.push(d);
    return out;
  };
  const firstExisting = async (downloads: readonly HttpDownload[]): Promise<HttpDownload | undefined> => (await existing(downloads))[0];

  return {
    async cacheMap(context: OpContext): Promise<CacheMap> {
      if (spec.checksum !== undefined) return { digest: cacheKey(spec, fileName(spec, undefined), spec.checksum, undefined), deps: [] };
      const found = await resolve(context);
      return { digest: cacheKey(spec, found.filename, found.digest, found.lastModified), deps: [] };
    },

    async run(_inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      if (spec.checksum !== undefined) {
        const record = await HttpDownloadRecord.open(recordDir, recordKey);
        const name = fileName(spec, undefined);
        const same = await firstExisting(record.downloads.filter((d) => d.digest === spec.checksum && d.filename === name));
        if (same !== undefined) return [{ id: same.snapshot }];
        return [{ id: (await unconditional(context)).snapshot }];
      }
      const found = await resolve(context);
      if (await deps.snapshotter.exists(found.snapshot)) return [{ id: found.snapshot }];
      // Pruned since the cache map looked: download again; the content must still be what the key says.
      resolved = undefined;
      const again = await unconditional(context);
      if (again.digest !== found.digest) {
        throw new HttpFetchError(`Cannot download "${shown}": its content changed during the build (it was ${found.digest})`, { retryable: false });
      }
      return [{ id: again.snapshot }];
    },
  };
}

/** BuildKit's formatCacheKey: the file's name, mode and owner, the content digest and, when known from a download, Last-Modified. */
function cacheKey(spec: HttpSourceSpec, filename: string, digest: string, lastModified: string | undefined): Digest {
  return sha256(canonicalJson({ http: { filename, perm: spec.perm, uid: spec.uid, gid: spec.gid, checksum: digest, ...(lastModified === undefined ? {} : { lastModified }) } }));
}

/** Streams the body into `path`, hashing it (sha256, plus the checksum's algorithm when that is another). */
async function writeBody(answer: HttpAnswer, path: string, context: OpContext, shown: string, algorithm: string): Promise<{ digest: Digest; checksum: string }> {
  const hash = createHash("sha256");
  const other = algorithm === "sha256" ? undefined : createHash(algorithm);
  const lengthHeader = header(answer, "content-length");
  const total = lengthHeader === undefined ? undefined : Number(lengthHeader);
  let bytes = 0;
  try {
    await pipeline(
      answer.body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          other?.update(chunk);
          bytes += chunk.length;
          context.progress.bytes(shown, bytes, total);
          yield chunk;
        }
      },
      createWriteStream(path, { mode: 0o600 }),
      { signal: context.signal },
    );
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    if (error instanceof HttpFetchError) throw error;
    const code = typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : "";
    // A body cut short (reset, server gone) is worth another try; a local write failure is not.
    const network = code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ETIMEDOUT" || (error as Error).message === "aborted";
    throw new HttpFetchError(`Cannot download "${shown}": ${(error as Error).message}`, { retryable: network, cause: error });
  }
  if (total !== undefined && Number.isFinite(total) && bytes !== total) {
    throw new HttpFetchError(`Cannot download "${shown}": the body ended after ${bytes} of ${total} bytes`, { retryable: true });
  }
  const digest = `sha256:${hash.digest("hex")}` as Digest;
  return { digest, checksum: other === undefined ? digest : `${algorithm}:${other.digest("hex")}` };
}

/** BuildKit's getFileName: `http.filename`, else Content-Disposition's filename, else the URL's last path segment; always one safe name. */
export function fileName(spec: HttpSourceSpec, answer: HttpAnswer | undefined): string {
  if (spec.filename !== "") return safeFileName(spec.filename);
  const disposition = answer === undefined ? undefined : header(answer, "content-disposition");
  const fromHeader = disposition === undefined ? undefined : dispositionFilename(disposition);
  if (fromHeader !== undefined && fromHeader !== "" && !fromHeader.endsWith("/")) return safeFileName(fromHeader);
  let segment = "";
  try {
    segment = decodeURIComponent(new URL(spec.url).pathname).split("/").filter((p) => p !== "").pop() ?? "";
  } catch {
    // An undecodable path: the placeholder name.
  }
  return safeFileName(segment);
}

/** The last component of `name`, or `__unnamed__` when that is empty, `.` or `..`. */
function safeFileName(name: string): string {
  const base = name.split("/").filter((p) => p !== "").pop() ?? "";
  return base === "" || base === "." || base === ".." ? "__unnamed__" : base;
}

/** The `filename` (or RFC 5987 `filename*`) parameter of a Content-Disposition header. */
function dispositionFilename(value: string): string | undefined {
  const star = /;\s*filename\*\s*=\s*([^']*)'[^']*'([^;\s]+)/iu.exec(value);
  if (star !== null) {
    try {
      return decodeURIComponent(star[2] as string);
    } catch {
      // Fall back to the plain parameter.
    }
  }
  const plain = /;\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/iu.exec(value);
  if (plain === null) return undefined;
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/gu, "$1") : plain[2];
}

function header(answer: HttpAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A Last-Modified value in Go's http.TimeFormat (`Mon, 02 Jan 2006 15:04:05 GMT`), or undefined when unparsable. */
function httpTime(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toUTCString();
}

/** An ETag as sent in If-None-Match: quoted unless the server gave it quoted. */
function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** Go's strconv.ParseInt(text, 0, 64): `0x`, `0o`, `0b` prefixes, a leading 0 for octal, `_` separators after a prefix. */
function goInteger(text: string): number | undefined {
  const t = text.replace(/^\+/u, "");
  let match: RegExpExecArray | null;
  if ((match = /^0[xX]_?([0-9a-fA-F_]+)$/u.exec(t)) !== null) return Number.parseInt((match[1] as string).replaceAll("_", ""), 16);
  if ((match = /^0[oO]?_?([0-7_]+)$/u.exec(t)) !== null) return Number.parseInt((match[1] as string).replaceAll("_", ""), 8);
  if ((match = /^0[bB]_?([01_]+)$/u.exec(t)) !== null) return Number.parseInt((match[1] as string).replaceAll("_", ""), 2);
  if (/^\d+$/u.test(t)) return Number(t);
  return undefined;
}
