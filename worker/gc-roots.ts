import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../solver/llb/index.js";
import type { ContentStore } from "./content/content-store.js";
import type { LocalImages } from "./content/image-index.js";
import { isIndexMediaType, isManifestMediaType } from "./oci/index.js";
import type { SnapshotStore } from "./snapshotter/snapshot-store.js";
import type { SnapshotId } from "./snapshotter/types.js";
import { chainIdOf } from "./snapshotter/unpack.js";

/**
 * A feature that remembers snapshots or blobs outside the cache records (a GC root). Each is a
 * directory of small JSON record files; `forget` drops the records last written before a time, so
 * a prune can release what only these hints keep.
 */
export interface GcRootSource {
  readonly name: string;
  /** The snapshot ids and blob digests its records name. */
  roots(): Promise<{ readonly snapshots: readonly SnapshotId[]; readonly blobs: readonly string[] }>;
  /** Deletes the records not written since `before` (ms since the epoch); returns how many. */
  forget(before: number): Promise<number>;
}

const DIGEST = /sha256:[0-9a-f]{64}/g;
const SNAPSHOT_ID = /^[0-9a-f]{32}$/;

/**
 * The record directories of the worker's features under the state root `root`:
 * - `executor/http/*.json`: downloads of ADD <url> (source-http.ts), each with its snapshot;
 * - `executor/local-sync/*.json`: the last context snapshot per context and selection (local-sync-record.ts);
 * - `exporter/store-layers/<snapshot>.json`: uncompressed store blobs per snapshot (a root for
 *   the blob only while its snapshot exists; the record goes with the snapshot);
 * - `exporter/layer-variants/*.json`: a layer's blob per compression.
 */
export function featureRootSources(root: string, snapshotExists: (id: SnapshotId) => Promise<boolean>): GcRootSource[] {
  const http = join(root, "executor", "http");
  const localSync = join(root, "executor", "local-sync");
  const storeLayers = join(root, "exporter", "store-layers");
  const variants = join(root, "exporter", "layer-variants");
  return [
    recordDir("http downloads", http, (data) => ({
      snapshots: Array.isArray((data as { downloads?: unknown }).downloads) ? (data as { downloads: { snapshot?: unknown }[] }).downloads.flatMap((d) => (typeof d.snapshot === "string" ? [d.snapshot] : [])) : [],
      blobs: [],
    })),
    recordDir("local contexts", localSync, (data) => {
      const snapshot = (data as { snapshot?: unknown }).snapshot;
      return { snapshots: typeof snapshot === "string" ? [snapshot] : [], blobs: [] };
    }),
    {
      name: "store layers",
      async roots() {
        const blobs: string[] = [];
        for (const { name, text } of await readRecords(storeLayers)) {
          const snapshot = name.slice(0, -".json".length);
          // Dropped, not trusted, once its snapshot is gone.
          if (!SNAPSHOT_ID.test(snapshot) || !(await snapshotExists(snapshot))) await rm(join(storeLayers, name), { force: true });
          else blobs.push(...(text.match(DIGEST) ?? []));
        }
        return { snapshots: [], blobs };
      },
      forget: () => Promise.resolve(0),
    },
    recordDir("layer variants", variants, (_data, text) => ({ snapshots: [], blobs: text.match(DIGEST) ?? [] })),
  ];
}

function recordDir(name: string, dir: string, parse: (data: unknown, text: string) => { snapshots: string[]; blobs: string[] }): GcRootSource {
  return {
    name,
    async roots() {
      const snapshots: string[] = [];
      const blobs: string[] = [];
      for (const record of await readRecords(dir)) {
        let data: unknown;
        try {
          data = JSON.parse(record.text);
        } catch {
          continue; // A torn record is no root (its writer renames whole files, so it is not ours).
        }
        const found = parse(data, record.text);
        snapshots.push(...found.snapshots.filter((id) => SNAPSHOT_ID.test(id)));
        blobs.push(...found.blobs);
      }
      return { snapshots, blobs };
    },
    async forget(before) {
      let count = 0;
      for (const file of await readdir(dir).catch(() => [] as string[])) {
        if (!file.endsWith(".json")) continue;
        try {
          if ((await stat(join(dir, file))).mtimeMs < before) {
            await rm(join(dir, file), { force: true });
            count++;
          }
        } catch {
          // Gone meanwhile.
        }
      }
      return count;
    },
  };
}

async function readRecords(dir: string): Promise<{ name: string; text: string }[]> {
  const records: { name: string; text: string }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith(".json")) continue;
    try {
      records.push({ name, text: await readFile(join(dir, name), "utf8") });
    } catch {
      // Gone meanwhile.
    }
  }
  return records;
}

/**
 * What the local image store pins: every blob reachable from its index.json (indexes, manifests,
 * configs, layers; a missing blob ends its branch) and the snapshots unpacked for each image's
 * layers (found by chain id, as `kiln import` and image sources leave them).
 */
export async function imageRoots(content: ContentStore, images: LocalImages, stores: readonly SnapshotStore[]): Promise<{ snapshots: SnapshotId[]; blobs: string[] }> {
  const blobs = new Set<string>();
  const snapshots: SnapshotId[] = [];
  const visit = async (digest: string, mediaType: string): Promise<void> => {
    if (blobs.has(digest)) return;
    blobs.add(digest);
    if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType)) return;
    let doc: { manifests?: { digest: string; mediaType: string }[]; config?: { digest: string }; layers?: { digest: string }[] };
    try {
      doc = await content.readJson(digest as Digest);
    } catch {
      return;
    }
    for (const child of doc.manifests ?? []) await visit(child.digest, child.mediaType);
    if (doc.config !== undefined) {
      blobs.add(doc.config.digest);
      try {
        const config = await content.readJson<{ rootfs?: { diff_ids?: Digest[] } }>(doc.config.digest as Digest);
        let chain: Digest | null = null;
        for (const diffId of config.rootfs?.diff_ids ?? []) {
          chain = chainIdOf(chain, diffId);
          for (const store of stores) {
            const id = await store.findChain(chain);
            if (id !== undefined) snapshots.push(id);
          }
        }
      } catch {
        // Not an image config (an artifact): its blob alone.
      }
    }
    for (const layer of doc.layers ?? []) blobs.add(layer.digest);
  };
  for (const { descriptor } of await images.list()) await visit(descriptor.digest, descriptor.mediaType);
  return { snapshots, blobs: [...blobs] };
}
