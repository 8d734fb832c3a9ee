import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { Digest, ImageConfig, Platform } from "../solver/llb/index.js";
import type { ContentStore } from "../worker/content/content-store.js";
import type { LocalImages } from "../worker/content/image-index.js";
import { MediaTypes } from "../worker/oci/index.js";
import type { LayerSource } from "../worker/snapshotter/types.js";
import { ExportError } from "./errors.js";
import { buildImage, type BuiltImage } from "./image/build-image.js";
import { storeImage } from "./image-store.js";
import { packDirectory } from "./rootfs-tar.js";

export interface ImportRootfsOptions {
  /** A root filesystem directory, or a tar file of one (plain or gzip-compressed). */
  readonly source: string;
  /** The name to store the image under (normalised like any image name). */
  readonly name: string;
  readonly content: ContentStore;
  readonly images: LocalImages;
  readonly platform: Platform;
  readonly config?: ImageConfig;
  /** SOURCE_DATE_EPOCH in seconds: the image's times, and a directory's file times clamped to it. */
  readonly epoch?: number;
  readonly signal?: AbortSignal;
}

/**
 * `kiln import`, like `docker import`: a one-layer image from a root filesystem, stored under
 * `name`. A directory becomes a deterministic tar (see packDirectory: owners, modes incl. sticky
 * bits, symlinks, hard links); a tar file is the layer as it is (a gzip one is stored without
 * recompressing). The config has `platform`, `config` (default empty) and one history line
 * `created_by: "kiln import"`.
 */
export async function importRootfs(options: ImportRootfsOptions): Promise<BuiltImage> {
  const layer = await rootfsLayer(options);
  const image = await buildImage({
    layers: [layer],
    image: { platform: options.platform, config: options.config ?? {}, history: [{ created_by: "kiln import" }] },
    content: options.content,
    ...(options.epoch === undefined ? {} : { epoch: options.epoch }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  await storeImage(image, options.images, [options.name]);
  return image;
}

async function rootfsLayer(options: ImportRootfsOptions): Promise<LayerSource> {
  const { source } = options;
  let stats;
  try {
    stats = await stat(source);
  } catch (error) {
    throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot import "${source}": it cannot be read`, { cause: error });
  }
  if (stats.isDirectory()) {
    const packOptions = { ...(options.epoch === undefined ? {} : { epoch: options.epoch }) };
    return { snapshot: `import:${source}`, blob: undefined, openTar: (signal) => packDirectory(source, { ...packOptions, ...(signal === undefined ? {} : { signal }) }) };
  }
  if (!stats.isFile()) {
    throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot import "${source}": it is neither a directory nor a tar file`);
  }
  const magic = await readMagic(source);
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    // Already gzip: keep the bytes as the blob; the diff id is the hash of what it inflates to.
    const signalOption = options.signal === undefined ? {} : { signal: options.signal };
    const stored = await options.content.ingest(createReadStream(source), signalOption);
    const hash = createHash("sha256");
    await pipeline(createReadStream(source), createGunzip(), async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) hash.update(chunk);
    }, signalOption);
    const diffId = `sha256:${hash.digest("hex")}` as Digest;
    const descriptor = { mediaType: MediaTypes.ociLayerGzip, digest: stored.digest, size: stored.size };
    return { snapshot: `import:${source}`, blob: { descriptor, diffId }, openTar: () => createReadStream(source).pipe(createGunzip()) };
  }
  if (magic[0] === 0x28 && magic[1] === 0xb5 && magic[2] === 0x2f && magic[3] === 0xfd) {
    throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot import "${source}": zstd-compressed tars are not supported; decompress it first`);
  }
  return { snapshot: `import:${source}`, blob: undefined, openTar: (signal) => createReadStream(source, signal === undefined ? {} : { signal }) };
}

async function readMagic(path: string): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(4);
    await handle.read(buffer, 0, 4, 0);
    return buffer;
  } finally {
    await handle.close();
  }
}
