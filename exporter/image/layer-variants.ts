import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import type { Descriptor, LayerCompression } from "../../worker/oci/index.js";

/**
 * A persistent record of which blob holds a layer (by diff id) in which compression: BuildKit
 * keeps the same thing as `buildkit.io/compression/digest.*` labels. With it, a layer converted to
 * zstd by one `force-compression=true` export is not compressed again by the next one. One small
 * JSON file per diff id and compression under `dir`, written to a temp name and renamed, so
 * concurrent builds on one state root never see half a record. A record whose blob has left the
 * content store (garbage collection) reads as absent.
 */
export class LayerVariants {
  readonly #dir: string;
  readonly #content: ContentStore;

  constructor(dir: string, content: ContentStore) {
    this.#dir = dir;
    this.#content = content;
  }

  /** The blob of `diffId` in `compression`, if one was recorded and is still in the content store. */
  async get(diffId: Digest, compression: LayerCompression): Promise<Descriptor | undefined> {
    let descriptor: Descriptor;
    try {
      descriptor = JSON.parse(await readFile(this.#file(diffId, compression), "utf8")) as Descriptor;
    } catch {
      return undefined;
    }
    return (await this.#content.has(descriptor.digest)) ? descriptor : undefined;
  }

  /** Records that `descriptor` (in the content store) is `diffId` compressed with `compression`. */
  async set(diffId: Digest, compression: LayerCompression, descriptor: Descriptor): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const file = this.#file(diffId, compression);
    const temp = `${file}.kiln-${randomBytes(6).toString("hex")}`;
    try {
      await writeFile(temp, JSON.stringify({ mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size }));
      await rename(temp, file);
    } finally {
      await rm(temp, { force: true });
    }
  }

  #file(diffId: Digest, compression: LayerCompression): string {
    return join(this.#dir, `${diffId.slice("sha256:".length)}.${compression}.json`);
  }
}
