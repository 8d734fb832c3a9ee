import PQueue from "p-queue";
import type { ContentStore } from "../content/content-store.js";
import type { Descriptor, Reference } from "../oci/index.js";
import type { RegistryClient } from "./client.js";

export interface PullBlobsOptions {
  readonly signal?: AbortSignal;
  /** How many blobs download at once (default 3, as Docker does). */
  readonly concurrency?: number;
  /** Bytes received so far for one blob. */
  readonly onBytes?: (descriptor: Descriptor, bytes: number) => void;
}

/**
 * Makes sure every blob of `descriptors` is in `content`, downloading only the missing ones from
 * `ref`'s repository, a bounded number at a time, each verified against its digest and size.
 * Resolves with the descriptors that were downloaded. The first failure cancels the downloads
 * still running and is thrown.
 */
export async function pullBlobs(
  client: RegistryClient,
  ref: Reference | string,
  descriptors: readonly Descriptor[],
  content: ContentStore,
  options: PullBlobsOptions = {},
): Promise<readonly Descriptor[]> {
  const missing: Descriptor[] = [];
  const seen = new Set<string>();
  for (const d of descriptors) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (!(await content.has(d.digest))) missing.push(d);
  }
  if (missing.length === 0) return [];
  const failed = new AbortController();
  const signal = options.signal === undefined ? failed.signal : AbortSignal.any([options.signal, failed.signal]);
  const queue = new PQueue({ concurrency: options.concurrency ?? 3 });
  const onBytes = options.onBytes;
  const tasks = missing.map((d) =>
    queue.add(async () => {
      signal.throwIfAborted();
      await client.pullBlob(ref, d, content, { signal, ...(onBytes === undefined ? {} : { onBytes: (n: number) => onBytes(d, n) }) });
    }),
  );
  try {
    // Fail fast, but wait for every task to settle so no download outlives this call.
    await Promise.all(tasks.map((t) => t.catch((error: unknown) => {
      if (!failed.signal.aborted) failed.abort(error);
      throw error;
    })));
  } catch (error) {
    await Promise.allSettled(tasks);
    throw options.signal?.aborted === true ? options.signal.reason : failed.signal.reason ?? error;
  }
  return missing;
}
