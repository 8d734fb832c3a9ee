import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import PQueue from "p-queue";
import type { Digest } from "../../solver/llb/index.js";
import type { ContentStore } from "../content/content-store.js";
import type { Descriptor, Reference } from "../oci/index.js";
import { pullScope, pushScope } from "./auth.js";
import type { RegistryClient, RegistryRequest } from "./client.js";
import { RegistryError } from "./errors.js";
import { withRetries } from "./retry.js";

/** How one blob got into the target repository. */
export type BlobPushOutcome = "existing" | "mounted" | "uploaded";

export interface PushImageOptions {
  /**
   * Config and layer blobs (any order; duplicates are pushed once). Each must be in the content
   * store. Child manifests of an index belong in `manifests`, not here.
   */
  readonly blobs: readonly Descriptor[];
  /**
   * Manifests in push order, each in the content store: an index's children first, the index
   * last. The last one is the image: it is what `tags` name and whose digest is returned.
   */
  readonly manifests: readonly Descriptor[];
  /** Tags to point at the image once everything else is there; empty: push by digest only. */
  readonly tags: readonly string[];
  /**
   * Other repositories of the same registry (paths, e.g. `library/busybox`) that are known to
   * hold a blob, for cross-repository mounts; a wrong guess only costs one request.
   */
  readonly mountSources?: (digest: Digest) => readonly string[];
  /** Blobs bigger than this are uploaded in PATCH chunks of this size (default 64 MiB). */
  readonly chunkSize?: number;
  /** Blobs pushed at once (default 4). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** Called once per blob when it is in the target repository, with how it got there. */
  readonly onBlob?: (descriptor: Descriptor, outcome: BlobPushOutcome) => void;
  /** Bytes of one blob sent so far (restarts when an upload starts over). */
  readonly onBytes?: (descriptor: Descriptor, bytes: number) => void;
}

/** What a push did. */
export interface PushResult {
  /** The digest of the image's top manifest (or index), as the registry confirmed it. */
  readonly digest: Digest;
  /** Every blob with how it reached the repository: already there, mounted, or uploaded. */
  readonly blobs: readonly { readonly descriptor: Descriptor; readonly outcome: BlobPushOutcome }[];
}

const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;

/**
 * Pushes an image from the content store to `target`'s repository over the Distribution API, the
 * way docker and containerd do: for each blob, a HEAD first (present: nothing sent); else a
 * cross-repository mount from a repository `mountSources` names; else an upload session (POST),
 * then one PUT with the bytes (monolithic) or, for blobs over `chunkSize`, PATCH chunks and a
 * closing PUT. Each step is retried per the client's policy; a chunk retried after a failure
 * resumes at the offset the registry reports. Manifests go only after every blob is there
 * (the registry refuses a manifest whose blobs it lacks), each by digest, then every tag.
 * `target`'s own tag and digest are ignored: `tags` says what to name.
 */
export async function pushImage(client: RegistryClient, content: ContentStore, target: Reference, options: PushImageOptions): Promise<PushResult> {
  const top = options.manifests.at(-1);
  if (top === undefined) throw new RegistryError("KILN_REGISTRY_REQUEST_FAILED", `Cannot push to "${target.domain}/${target.path}": no manifest was given`);
  const push = new BlobPush(client, content, target, options);
  const unique = [...new Map(options.blobs.map((d) => [d.digest, d])).values()];
  const queue = new PQueue({ concurrency: options.concurrency ?? 4 });
  const failed = new AbortController();
  const signal = options.signal === undefined ? failed.signal : AbortSignal.any([options.signal, failed.signal]);
  const tasks = unique.map((d) =>
    queue.add(async () => {
      signal.throwIfAborted();
      const outcome = await push.blob(d, signal);
      options.onBlob?.(d, outcome);
      return { descriptor: d, outcome };
    }),
  );
  let blobs: { descriptor: Descriptor; outcome: BlobPushOutcome }[];
  try {
    blobs = await Promise.all(
      tasks.map((t) =>
        t.catch((error: unknown) => {
          if (!failed.signal.aborted) failed.abort(error);
          throw error;
        }),
      ),
    );
  } catch (error) {
    // Wait for every upload to stop before reporting, so none outlives this call.
    await Promise.allSettled(tasks);
    throw options.signal?.aborted === true ? options.signal.reason : (failed.signal.reason ?? error);
  }
  for (const manifest of options.manifests) await push.manifest(manifest, manifest.digest, options.signal);
  for (const tag of options.tags) await push.manifest(top, tag, options.signal);
  return { digest: top.digest, blobs };
}

/** The requests of one push; holds the target and options so each step reads as the protocol. */
class BlobPush {
  readonly #client: RegistryClient;
  readonly #content: ContentStore;
  readonly #target: Reference;
  readonly #repo: string;
  readonly #options: PushImageOptions;

  constructor(client: RegistryClient, content: ContentStore, target: Reference, options: PushImageOptions) {
    this.#client = client;
    this.#content = content;
    this.#target = target;
    this.#repo = `${target.domain}/${target.path}`;
    this.#options = options;
  }

  /** Makes sure one blob is in the target repository. */
  async blob(d: Descriptor, signal: AbortSignal): Promise<BlobPushOutcome> {
    const what = `blob "${d.digest}" to "${this.#repo}"`;
    const exists = await this.#retry(async () => {
      const response = await this.#request({ method: "HEAD", url: `blobs/${d.digest}`, what, accept: [404] }, signal);
      await response.body?.cancel();
      return response.status === 200;
    }, signal);
    if (exists) return "existing";
    const sources = (this.#options.mountSources?.(d.digest) ?? []).filter((path) => path !== this.#target.path);
    for (const from of sources) {
      const mounted = await this.#retry(async () => {
        const response = await this.#request(
          {
            method: "POST",
            url: `blobs/uploads/?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`,
            scope: `${pushScope(this.#target.path)} ${pullScope(from)}`,
            what: `a mount of ${what} from "${from}"`,
          },
          signal,
        );
        await response.body?.cancel();
        if (response.status === 201) return true;
        // 202: the registry could not mount and opened an upload session instead; close it.
        const location = response.headers.get("location");
        if (location !== null) await this.#cancelSession(new URL(location, response.url).toString(), signal);
        return false;
      }, signal);
      if (mounted) return "mounted";
    }
    await this.#retry(() => this.#upload(d, what, signal), signal);
    return "uploaded";
  }

  /** PUTs a manifest from the content store under `reference` (its digest or a tag) and checks the digest the registry reports. */
  async manifest(d: Descriptor, reference: string, signal: AbortSignal | undefined): Promise<void> {
    const bytes = await this.#content.readBytes(d.digest);
    const what = `manifest "${this.#repo}${reference.startsWith("sha256:") ? "@" : ":"}${reference}"`;
    await this.#retry(async () => {
      const response = await this.#request({ method: "PUT", url: `manifests/${reference}`, what, headers: { "content-type": d.mediaType }, body: () => bytes }, signal);
      await response.body?.cancel();
      const confirmed = response.headers.get("docker-content-digest");
      if (confirmed !== null && confirmed !== d.digest) {
        throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot push ${what}: the registry stored it as "${confirmed}", not "${d.digest}"`, { url: response.url });
      }
    }, signal);
  }

  /** One upload attempt: a new session, then the bytes, whole or in chunks. */
  async #upload(d: Descriptor, what: string, signal: AbortSignal): Promise<void> {
    const opened = await this.#request({ method: "POST", url: "blobs/uploads/", what, headers: { "content-length": "0" } }, signal);
    await opened.body?.cancel();
    let location = sessionLocation(opened, what);
    const chunkSize = this.#options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const onBytes = this.#options.onBytes;
    if (d.size <= chunkSize) {
      const response = await this.#request(
        {
          method: "PUT",
          url: withQuery(location, "digest", d.digest),
          what,
          headers: { "content-type": "application/octet-stream", "content-length": String(d.size) },
          body: () => this.#range(d, 0, d.size, (n) => onBytes?.(d, n)),
        },
        signal,
      );
      await response.body?.cancel();
      return;
    }
    let offset = 0;
    while (offset < d.size) {
      location = await this.#retry(async (attempt) => {
        // After a failed chunk the registry may hold part of it: continue where it says it is.
        if (attempt > 1) offset = await this.#uploadedSoFar(location, what, signal);
        const end = Math.min(offset + chunkSize, d.size);
        const start = offset;
        const response = await this.#request(
          {
            method: "PATCH",
            url: location,
            what,
            headers: { "content-type": "application/octet-stream", "content-length": String(end - start), "content-range": `${start}-${end - 1}` },
            body: () => this.#range(d, start, end, (n) => onBytes?.(d, start + n)),
          },
          signal,
        );
        await response.body?.cancel();
        offset = end;
        return sessionLocation(response, what);
      }, signal);
    }
    const closed = await this.#request({ method: "PUT", url: withQuery(location, "digest", d.digest), what, headers: { "content-length": "0" } }, signal);
    await closed.body?.cancel();
  }

  /** The next offset of an upload session, from its `Range: 0-N` (GET on the session). */
  async #uploadedSoFar(location: string, what: string, signal: AbortSignal): Promise<number> {
    const response = await this.#request({ method: "GET", url: location, what }, signal);
    await response.body?.cancel();
    const range = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get("range") ?? "");
    return range === null ? 0 : Number(range[1]) + 1;
  }

  async #cancelSession(location: string, signal: AbortSignal): Promise<void> {
    try {
      const response = await this.#request({ method: "DELETE", url: location, what: "an unused upload session", accept: [404] }, signal);
      await response.body?.cancel();
    } catch {
      // An abandoned session expires on its own; not worth failing the push for.
    }
  }

  /** Bytes [start, end) of a blob in the content store, counting what was read. */
  #range(d: Descriptor, start: number, end: number, onBytes: (n: number) => void): Readable {
    const path = this.#content.path(d.digest);
    return Readable.from(
      (async function* () {
        let sent = 0;
        for await (const chunk of createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
          sent += chunk.byteLength;
          onBytes(sent);
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
  }

  #request(request: Omit<RegistryRequest, "scope" | "verb"> & { scope?: string }, signal: AbortSignal | undefined): Promise<Response> {
    return this.#client.request(this.#target, { scope: pushScope(this.#target.path), verb: "push", ...request }, signal);
  }

  #retry<T>(work: (attempt: number) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    return withRetries(work, { policy: this.#client.retryPolicy, ...(signal === undefined ? {} : { signal }) });
  }
}

/** An upload session's URL from a 202's `Location` (which may be relative). */
function sessionLocation(response: Response, what: string): string {
  const location = response.headers.get("location");
  if (location === null) {
    throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot push ${what}: the registry answered HTTP ${response.status} without a Location for the upload`, { url: response.url });
  }
  return new URL(location, response.url).toString();
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}
