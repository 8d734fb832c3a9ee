import { chmod, chown, mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes } from "../../worker/oci/index.js";
import { cacheMountName } from "../../worker/ops/exec-mounts.js";
import { applyLayer } from "../../worker/snapshotter/apply-layer.js";
import { packDirectory } from "../rootfs-tar.js";
import type { CacheMountEntry } from "./cache-config.js";
import { openBlobTar } from "./imported-cache.js";

/** Where the worker keeps `RUN --mount=type=cache` directories under a state root (worker/worker.ts). */
export function cacheMountsRoot(stateRoot: string): string {
  return join(stateRoot, "executor", "cache-mounts");
}

/**
 * Packs the cache mount directories of `ids` (those that exist under `stateRoot`) into gzip tar
 * blobs in the content store, keyed by the mount's id. A `private` mount's extra instances
 * (`NAME-1`…) are not shipped: the first instance is the cache.
 */
export async function packCacheMounts(stateRoot: string, content: ContentStore, ids: readonly string[], signal?: AbortSignal): Promise<CacheMountEntry[]> {
  const entries: CacheMountEntry[] = [];
  for (const id of [...new Set(ids)].sort()) {
    const dir = join(cacheMountsRoot(stateRoot), cacheMountName(id));
    let info;
    try {
      info = await stat(dir);
    } catch {
      continue;
    }
    const compressed = new PassThrough();
    const signalOption = signal === undefined ? {} : { signal };
    const [produced, stored] = await Promise.allSettled([
      pipeline(packDirectory(dir, signalOption), createGzip(), compressed, signalOption),
      content.ingest(compressed, signalOption),
    ]);
    if (produced.status === "rejected") throw produced.reason;
    if (stored.status === "rejected") throw stored.reason;
    entries.push({
      id,
      blob: { mediaType: MediaTypes.ociLayerGzip, digest: stored.value.digest, size: stored.value.size },
      mode: info.mode & 0o7777,
      uid: info.uid,
      gid: info.gid,
    });
  }
  return entries;
}

/**
 * Restores imported cache mounts under `stateRoot`: each one this root does not have yet is
 * unpacked into a staging directory and renamed into place, so a RUN never sees half of it. A
 * cache mount the root already has is kept as it is (local state wins). `fetch` puts an entry's
 * blob into `content` (verified by digest). Returns the ids restored.
 */
export async function restoreCacheMounts(
  stateRoot: string,
  content: ContentStore,
  entries: readonly CacheMountEntry[],
  fetch: (entry: CacheMountEntry) => Promise<void>,
  signal?: AbortSignal,
): Promise<string[]> {
  const restored: string[] = [];
  for (const entry of entries) {
    const dir = join(cacheMountsRoot(stateRoot), cacheMountName(entry.id));
    if (await exists(dir)) continue;
    await fetch(entry);
    await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    const staging = `${dir}.import-${process.pid}-${Date.now()}`;
    await mkdir(staging, { mode: 0o755 });
    try {
      await applyLayer(openBlobTar(content, entry.blob), staging, { layerName: `cache mount "${entry.id}"`, whiteouts: "native", ...(signal === undefined ? {} : { signal }) });
      await chmod(staging, entry.mode);
      await chown(staging, entry.uid, entry.gid);
      await rename(staging, dir);
      restored.push(entry.id);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      // Another build made it meanwhile: theirs stands.
      if (await exists(dir)) continue;
      throw error;
    }
  }
  return restored;
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
