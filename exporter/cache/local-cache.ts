import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { copyFile, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import { MediaTypes, type Descriptor, type ImageIndex, type Manifest } from "../../worker/oci/index.js";
import { REF_NAME_ANNOTATION } from "../oci-layout.js";
import { isCacheManifest, readCacheConfig, writeCacheArtifact } from "./cache-artifact.js";
import { CacheImportError, type CacheConfig } from "./cache-config.js";
import type { CollectedCache } from "./collect-cache.js";
import type { BlobSource } from "./imported-cache.js";

/** The `ref.name` of the cache manifest in a local cache's index.json. */
const CACHE_REF_NAME = "kiln-cache";

/**
 * Writes a cache as an OCI image layout in `dest` (`oci-layout`, `index.json`,
 * `blobs/sha256/…`), as BuildKit's local cache does. Crash-safe at every instant: each blob is
 * copied to a temp name, synced and renamed (blobs are content-addressed, so an existing one is
 * kept), and `index.json` is replaced last, by rename. An interrupted export leaves the previous
 * `index.json` with every blob it names; blobs of earlier exports are not removed.
 */
export async function writeLocalCache(dest: string, content: ContentStore, cache: CollectedCache, signal?: AbortSignal): Promise<Descriptor> {
  const artifact = await writeCacheArtifact(content, cache);
  const blobDir = join(dest, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  await writeAtomically(join(dest, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const descriptor of [...artifact.layers, artifact.config, artifact.manifest]) {
    signal?.throwIfAborted();
    const target = join(blobDir, hexOf(descriptor.digest));
    if ((await sizeOf(target)) === descriptor.size) continue;
    const temp = `${target}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
    try {
      await copyFile(content.path(descriptor.digest), temp);
      await syncFile(temp);
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: [{ ...artifact.manifest, annotations: { [REF_NAME_ANNOTATION]: CACHE_REF_NAME } }],
  };
  await writeAtomically(join(dest, "index.json"), JSON.stringify(index));
  return artifact.manifest;
}

/**
 * Opens the local cache in `src`: reads `index.json`, the cache manifest and its config, each
 * checked against its digest. Layer blobs are checked when a build fetches them (see
 * ImportedCache). Throws CacheImportError when `src` holds no readable kiln cache.
 */
export async function readLocalCache(src: string): Promise<{ config: CacheConfig; blobs: BlobSource }> {
  const what = `"${src}"`;
  let index: ImageIndex;
  try {
    index = JSON.parse(await readFile(join(src, "index.json"), "utf8")) as ImageIndex;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "it has no index.json (export a cache there first with --export-cache type=local,dest=DIR)" : "its index.json is not valid JSON";
    throw new CacheImportError(`Cannot import cache ${what}: ${why}`, { cause: error });
  }
  const blobs = localBlobs(src);
  for (const descriptor of Array.isArray(index.manifests) ? index.manifests : []) {
    if (descriptor.mediaType !== MediaTypes.ociManifest) continue;
    const manifest = JSON.parse((await blobs.read(descriptor, what)).toString("utf8")) as Manifest;
    if (!isCacheManifest(manifest)) continue;
    const config = readCacheConfig(await blobs.read(manifest.config, what), what);
    return { config, blobs };
  }
  throw new CacheImportError(`Cannot import cache ${what}: its index.json names no kiln cache manifest`);
}

function localBlobs(src: string): BlobSource & { read(descriptor: Descriptor, what: string): Promise<Buffer> } {
  const path = (digest: Digest): string => join(src, "blobs", "sha256", hexOf(digest));
  return {
    name: `local cache "${src}"`,
    async has(descriptor) {
      return (await sizeOf(path(descriptor.digest))) === descriptor.size;
    },
    async fetch(descriptor, content, signal) {
      await content.ingest(createReadStream(path(descriptor.digest)), {
        expected: descriptor.digest,
        expectedSize: descriptor.size,
        ...(signal === undefined ? {} : { signal }),
      });
    },
    async read(descriptor, what) {
      let bytes: Buffer;
      try {
        bytes = await readFile(path(descriptor.digest));
      } catch (error) {
        throw new CacheImportError(`Cannot import cache ${what}: blob "${descriptor.digest}" is missing`, { cause: error });
      }
      const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      if (actual !== descriptor.digest) throw new CacheImportError(`Cannot import cache ${what}: blob "${descriptor.digest}" is corrupt (its bytes hash to "${actual}")`);
      return bytes;
    },
  };
}

function hexOf(digest: Digest): string {
  return digest.slice("sha256:".length);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    const handle = await open(temp, "wx", 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
}
