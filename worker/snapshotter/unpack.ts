import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { sha256, type Digest } from "../../solver/llb/index.js";
import type { ContentStore } from "../content/content-store.js";
import { layerCompression, type Descriptor } from "../oci/index.js";
import { applyLayer } from "./apply-layer.js";
import { LayerError } from "./errors.js";
import type { SnapshotId, Snapshotter } from "./types.js";
import { inUserNamespace } from "./user-namespace.js";

export interface UnpackOptions {
  readonly snapshotter: Snapshotter;
  readonly content: ContentStore;
  /** The manifest's layers, base first; their blobs must already be in `content`. */
  readonly layers: readonly Descriptor[];
  /** The config's rootfs.diff_ids, one per layer. */
  readonly diffIds: readonly Digest[];
  readonly signal?: AbortSignal;
  /** Called after layer `index` is available (unpacked now or found already unpacked). */
  readonly onLayer?: (index: number) => void;
}

/** The OCI chain id of a layer on top of `parent` (the chain id below it; null for the base). */
export function chainIdOf(parent: Digest | null, diffId: Digest): Digest {
  return parent === null ? diffId : sha256(`${parent} ${diffId}`);
}

/**
 * Unpacks an image's layers into committed snapshots, one per layer, and returns the top one
 * (null for an image with no layers). A chain already unpacked (found by its chain id) is reused;
 * otherwise the layer is applied into a fresh snapshot, its diff id checked against the config's,
 * and committed with its blob and chain id. Two concurrent unpacks of one image may both unpack a
 * layer; each commits its own complete snapshot, and either may be found later.
 */
export async function unpackImage(options: UnpackOptions): Promise<SnapshotId | null> {
  const { snapshotter, content, layers, diffIds } = options;
  if (layers.length !== diffIds.length) {
    throw new LayerError("KILN_LAYER_INVALID", "image", undefined, `Cannot unpack image: the manifest has ${layers.length} layers but the config lists ${diffIds.length} diff ids`);
  }
  let parent: SnapshotId | null = null;
  let chainId: Digest | null = null;
  for (const [index, descriptor] of layers.entries()) {
    options.signal?.throwIfAborted();
    const diffId = diffIds[index] as Digest;
    chainId = chainIdOf(chainId, diffId);
    const existing = await snapshotter.findChain(chainId);
    if (existing !== undefined) {
      parent = existing;
      options.onLayer?.(index);
      continue;
    }
    const active = await snapshotter.prepare(parent);
    try {
      const userxattr = active.mount.kind === "overlay" ? active.mount.userxattr : inUserNamespace();
      const applied = await applyLayer(openLayer(content, descriptor), active.upperdir, {
        layerName: descriptor.digest,
        whiteouts: snapshotter.kind === "overlay" ? "overlay" : "native",
        userxattr,
        ...(active.mount.kind === "overlay" ? { lowerdirs: active.mount.lowerdirs } : {}),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      if (applied.diffId !== diffId) {
        throw new LayerError("KILN_LAYER_DIFFID_MISMATCH", descriptor.digest, undefined, `Cannot unpack layer "${descriptor.digest}": its uncompressed content hashes to "${applied.diffId}" but the image config says "${diffId}"`);
      }
      parent = await snapshotter.commit(active, { blob: { descriptor, diffId }, chainId });
    } catch (error) {
      await snapshotter.abort(active);
      throw error;
    }
    options.onLayer?.(index);
  }
  return parent;
}

/** A fresh uncompressed stream of a layer blob. */
function openLayer(content: ContentStore, descriptor: Descriptor): Readable {
  const compression = layerCompression(descriptor.mediaType);
  switch (compression) {
    case "uncompressed":
      return content.openRead(descriptor.digest);
    case "gzip":
      return decompress(content.openRead(descriptor.digest), zlib.createGunzip());
    case "zstd": {
      const create = (zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream }).createZstdDecompress;
      if (create === undefined) {
        throw new LayerError("KILN_LAYER_UNSUPPORTED", descriptor.digest, undefined, `Cannot unpack layer "${descriptor.digest}": zstd layers are not supported on Node ${process.versions.node} (zlib has no zstd before Node 22.15)`);
      }
      return decompress(content.openRead(descriptor.digest), create() as unknown as Transform);
    }
    case undefined:
      throw new LayerError("KILN_LAYER_UNSUPPORTED", descriptor.digest, undefined, `Cannot unpack layer "${descriptor.digest}": unknown layer media type "${descriptor.mediaType}"`);
  }
}

/** `source` through `transform`; a read error of `source` destroys `transform`, so the reader sees it. */
function decompress(source: Readable, transform: Transform): Readable {
  pipeline(source, transform).catch(() => {
    // The error reaches the reader through `transform`.
  });
  return transform;
}
