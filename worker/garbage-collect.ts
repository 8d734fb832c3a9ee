import { rm } from "node:fs/promises";
import { join } from "node:path";
import { contentIndexFile } from "./checksum/index.js";
import type { ContentStore, StoredBlob } from "./content/content-store.js";
import type { LocalImages } from "./content/image-index.js";
import { featureRootSources, imageRoots } from "./gc-roots.js";
import { listSnapshots, openSnapshotStores, sweepSnapshots, type SweptSnapshot } from "./snapshotter/snapshot-gc.js";
import type { SnapshotId } from "./snapshotter/types.js";
import { directoryUsage } from "./snapshotter/usage.js";

/** Unreferenced snapshots younger than this are kept: a build may be about to record them. */
export const SNAPSHOT_GRACE_MS = 10 * 60_000;
/** Unreferenced blobs younger than this (by mtime), and temp files of writers younger than this, are kept. */
export const BLOB_GRACE_MS = 60 * 60_000;

export interface WorkerGcOptions {
  /** Snapshots the solver's cache records still name (the first GC root). */
  readonly cacheRoots: Iterable<SnapshotId>;
  /**
   * Feature records (http downloads, local context snapshots, layer variants) not written since
   * this time (ms since the epoch) are forgotten before marking; absent: all are kept as roots.
   */
  readonly forgetFeaturesBefore?: number;
  /** Snapshots the records just deleted named: exempt from the grace period (leases still hold them). */
  readonly released?: Iterable<SnapshotId>;
  readonly graceMs?: number;
  readonly blobGraceMs?: number;
  readonly now?: number;
  /** Only report what would be removed (`kiln du`'s reclaimable part); feature records are not forgotten. */
  readonly dryRun?: boolean;
}

/** What a worker garbage collection removed (or, dry, would remove). */
export interface WorkerGcReport {
  readonly snapshots: readonly SweptSnapshot[];
  readonly snapshotBytes: number;
  readonly blobs: readonly StoredBlob[];
  readonly blobBytes: number;
}

/**
 * Mark and sweep over the worker's state under `root`. Roots: `cacheRoots`, the local image
 * store (its blobs and the snapshots unpacked for its images), the feature records of
 * gc-roots.ts, and the snapshots live processes lease (snapshot-leases.ts). Snapshots: every
 * committed one outside the roots and their ancestors, older than the grace period, is removed
 * (snapshot-gc.ts). Blobs: every blob not reachable from the images, the feature records or a
 * remaining snapshot's layer blob, older than the blob grace period, is removed, and so are
 * temp files older than it. A removed snapshot's content index goes with it.
 */
export async function collectWorkerGarbage(
  worker: { readonly root: string; readonly content: ContentStore; readonly images: LocalImages },
  options: WorkerGcOptions,
): Promise<WorkerGcReport> {
  const now = options.now ?? Date.now();
  const dryRun = options.dryRun === true;
  const stores = await openSnapshotStores(worker.root);
  const snapshotExists = async (id: SnapshotId): Promise<boolean> => {
    for (const store of stores) if ((await store.tryRead(id)) !== undefined) return true;
    return false;
  };
  const features = featureRootSources(worker.root, snapshotExists);
  if (options.forgetFeaturesBefore !== undefined && !dryRun) for (const source of features) await source.forget(options.forgetFeaturesBefore);

  const rootSnapshots = new Set<SnapshotId>(options.cacheRoots);
  const images = await imageRoots(worker.content, worker.images, stores);
  for (const id of images.snapshots) rootSnapshots.add(id);
  for (const source of features) {
    for (const id of (await source.roots()).snapshots) rootSnapshots.add(id);
  }

  const released = [...(options.released ?? [])];
  const swept: SweptSnapshot[] = [];
  let snapshotBytes = 0;
  const remainingBlobs = new Set<string>(images.blobs);
  for (const store of stores) {
    const doomed = await sweepSnapshots(store, { roots: rootSnapshots, graceMs: options.graceMs ?? SNAPSHOT_GRACE_MS, released, now, dryRun: true });
    for (const { id } of doomed) snapshotBytes += await directoryUsage(store.fsDir(id));
    const removed = dryRun ? doomed : await sweepSnapshots(store, { roots: rootSnapshots, graceMs: options.graceMs ?? SNAPSHOT_GRACE_MS, released, now });
    swept.push(...removed);
    const gone = new Set(removed.map((s) => s.id));
    for (const info of await listSnapshots(store)) if (!gone.has(info.id) && info.blob !== undefined) remainingBlobs.add(info.blob.descriptor.digest);
  }
  // A swept local-source snapshot's content index (worker/checksum/content-index.ts) goes with it.
  if (!dryRun) for (const { id } of swept) await rm(contentIndexFile(join(worker.root, "executor"), id), { force: true });
  for (const source of features) {
    for (const digest of (await source.roots()).blobs) remainingBlobs.add(digest);
  }
  const blobGraceMs = options.blobGraceMs ?? BLOB_GRACE_MS;
  const blobs = await worker.content.sweep(remainingBlobs, { graceMs: blobGraceMs, ingestGraceMs: BLOB_GRACE_MS, now, dryRun });
  return { snapshots: swept, snapshotBytes, blobs, blobBytes: blobs.reduce((total, b) => total + b.size, 0) };
}
