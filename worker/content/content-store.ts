import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { digestHex, KilnError, type Digest } from "../../solver/llb/index.js";

/** A blob kiln tried to store did not have the digest or size it was promised. */
export class ContentError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_CONTENT_INVALID", message, options);
  }
}

/** Where a blob ended up and what it is. */
export interface StoredBlob {
  readonly digest: Digest;
  readonly size: number;
}

export interface IngestOptions {
  /** The digest the bytes must have; a mismatch deletes the temp file and throws ContentError. */
  readonly expected?: Digest;
  readonly expectedSize?: number;
  readonly signal?: AbortSignal;
  /** Called with the byte count so far, for progress. */
  readonly onBytes?: (bytes: number) => void;
}

/**
 * Blobs by digest, shared by every build on a state root. The directory is an OCI image layout
 * (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), so skopeo and umoci can read kiln's local
 * images directly. Writes go to `ingest/` and are renamed into place only once verified, so a
 * crash never leaves a blob under a wrong name.
 */
export class ContentStore {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens (creating when missing) the content store at `root`. */
  static async open(root: string): Promise<ContentStore> {
    await mkdir(join(root, "blobs", "sha256"), { recursive: true });
    await mkdir(join(root, "ingest"), { recursive: true });
    const layoutFile = join(root, "oci-layout");
    try {
      await stat(layoutFile);
    } catch {
      await writeFile(layoutFile, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    }
    return new ContentStore(root);
  }

  /** The file of a blob (which may not exist). */
  path(digest: Digest): string {
    return join(this.root, "blobs", "sha256", digestHex(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async size(digest: Digest): Promise<number> {
    return (await stat(this.path(digest))).size;
  }

  async readBytes(digest: Digest): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  async readJson<T>(digest: Digest): Promise<T> {
    return JSON.parse((await this.readBytes(digest)).toString("utf8")) as T;
  }

  /** A fresh read stream of a blob; the caller consumes or destroys it. */
  openRead(digest: Digest): Readable {
    return createReadStream(this.path(digest));
  }

  /** Stores bytes; returns their digest. Existing blobs are left as they are. */
  async writeBytes(bytes: Uint8Array, options: IngestOptions = {}): Promise<StoredBlob> {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
    if (options.expected !== undefined && options.expected !== digest) {
      throw new ContentError(`Cannot store blob: expected digest "${options.expected}" but the bytes hash to "${digest}"`);
    }
    if (!(await this.has(digest))) {
      const temp = this.tempPath();
      await writeFile(temp, bytes);
      await rename(temp, this.path(digest));
    }
    return { digest, size: bytes.byteLength };
  }

  /**
   * Streams bytes into the store, hashing as they arrive; verifies against `expected` and
   * `expectedSize` before the rename that makes the blob visible.
   */
  async ingest(source: Readable | AsyncIterable<Uint8Array>, options: IngestOptions = {}): Promise<StoredBlob> {
    const temp = this.tempPath();
    const hash = createHash("sha256");
    let size = 0;
    const onBytes = options.onBytes;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.byteLength;
            onBytes?.(size);
            yield chunk;
          }
        },
        createWriteStream(temp),
        ...(options.signal === undefined ? [] : [{ signal: options.signal }]),
      );
      const digest = `sha256:${hash.digest("hex")}` as Digest;
      if (options.expected !== undefined && digest !== options.expected) {
        throw new ContentError(`Cannot store blob: expected digest "${options.expected}" but received bytes hash to "${digest}"`);
      }
      if (options.expectedSize !== undefined && size !== options.expectedSize) {
        throw new ContentError(`Cannot store blob "${digest}": expected ${options.expectedSize} bytes but received ${size}`);
      }
      await rename(temp, this.path(digest));
      return { digest, size };
    } finally {
      await rm(temp, { force: true });
    }
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  private tempPath(): string {
    return join(this.root, "ingest", `${process.pid}-${randomBytes(8).toString("hex")}`);
  }
}
