import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, statSync, utimesSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { digestHex, KilnError, type Digest } from "../../solver/llb/index.js";
import { StreamHash } from "./stream-hash.js";

/** A blob kiln tried to store did not have the digest or size it was promised. */
export class ContentError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_CONTENT_INVALID", message, options);
  }
}

/** A blob whose mtime is younger than this is not touched again (see `ContentStore.touch`). */
export const TOUCH_INTERVAL_MS = 10 * 60_000;

/** Bytes gathered from small chunks into one write while ingesting. */
const WRITE_BATCH = 1 << 20;

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

  /** Whether the blob is stored; a found blob is touched (see `touch`): who asks is about to rely on it. */
  async has(digest: Digest): Promise<boolean> {
    return this.touch(digest);
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
    if (!(await this.touch(digest))) {
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
    // A large blob is hashed on a worker thread while this one writes it (see StreamHash).
    const hash = new StreamHash();
    let size = 0;
    const onBytes = options.onBytes;
    try {
      await pipeline(
        source,
        // Small chunks (a layer tar is a header and a little content per file) are written in
        // batches of up to WRITE_BATCH bytes: one write per chunk would cost a thread-pool round
        // trip for each file of the layer.
        async function* (chunks: AsyncIterable<Uint8Array>) {
          let batch: Uint8Array[] = [];
          let batched = 0;
          for await (const chunk of chunks) {
            const hashing = hash.update(chunk);
            if (hashing !== undefined) await hashing;
            size += chunk.byteLength;
            onBytes?.(size);
            batch.push(chunk);
            batched += chunk.byteLength;
            if (batched >= WRITE_BATCH) {
              yield batch.length === 1 ? (batch[0] as Uint8Array) : Buffer.concat(batch, batched);
              batch = [];
              batched = 0;
            }
          }
          if (batch.length > 0) yield batch.length === 1 ? (batch[0] as Uint8Array) : Buffer.concat(batch, batched);
        },
        createWriteStream(temp),
        ...(options.signal === undefined ? [] : [{ signal: options.signal }]),
      );
      const digest = `sha256:${await hash.digest()}` as Digest;
      if (options.expected !== undefined && digest !== options.expected) {
        throw new ContentError(`Cannot store blob: expected digest "${options.expected}" but received bytes hash to "${digest}"`);
      }
      if (options.expectedSize !== undefined && size !== options.expectedSize) {
        throw new ContentError(`Cannot store blob "${digest}": expected ${options.expectedSize} bytes but received ${size}`);
      }
      await rename(temp, this.path(digest));
      return { digest, size };
    } finally {
      hash.dispose();
      await rm(temp, { force: true });
    }
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /**
   * Refreshes a blob's mtime when it exists (returns whether it does) and is older than
   * TOUCH_INTERVAL_MS. Whoever is about to refer to an existing blob touches it, so a concurrent
   * sweep's grace period covers it as if written at most TOUCH_INTERVAL_MS ago.
   */
  async touch(digest: Digest): Promise<boolean> {
    // Synchronous (one statx, inline, costs less than a thread-pool trip), and a blob touched less
    // than TOUCH_INTERVAL_MS ago is left as it is: its mtime is then younger than a sweep's grace
    // period (BLOB_GRACE_MS, six times longer) for at least 50 minutes, so a cached rebuild
    // writes no inode metadata for the blobs it relies on.
    const path = this.path(digest);
    const now = Date.now();
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path).mtimeMs;
    } catch {
      return false;
    }
    if (now - mtimeMs >= TOUCH_INTERVAL_MS || mtimeMs > now) {
      try {
        utimesSync(path, now / 1000, now / 1000);
      } catch {
        // Removed meanwhile (a sweep won the race: then it is gone) or a read-only store.
        return statSync(path, { throwIfNoEntry: false }) !== undefined;
      }
    }
    return true;
  }

  /** Every stored blob with its size and mtime (ms). */
  async list(): Promise<{ readonly digest: Digest; readonly size: number; readonly mtimeMs: number }[]> {
    const dir = join(this.root, "blobs", "sha256");
    const blobs = [];
    for (const name of await readdir(dir)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        const info = await stat(join(dir, name));
        blobs.push({ digest: `sha256:${name}` as Digest, size: info.size, mtimeMs: info.mtimeMs });
      } catch {
        // Removed meanwhile.
      }
    }
    return blobs;
  }

  /**
   * The sweep of a mark and sweep: deletes every blob not in `keep` whose mtime is older than
   * `graceMs` (blobs being written, or just referred to by a build, are younger), and temp files
   * of `ingest/` older than `ingestGraceMs` (a writer that died). Returns what it deleted (or, dry,
   * would delete).
   */
  async sweep(keep: ReadonlySet<string>, options: { readonly graceMs: number; readonly ingestGraceMs: number; readonly now?: number; readonly dryRun?: boolean }): Promise<StoredBlob[]> {
    const now = options.now ?? Date.now();
    const deleted: StoredBlob[] = [];
    for (const blob of await this.list()) {
      if (keep.has(blob.digest) || now - blob.mtimeMs < options.graceMs) continue;
      if (options.dryRun !== true) await this.delete(blob.digest);
      deleted.push({ digest: blob.digest, size: blob.size });
    }
    if (options.dryRun === true) return deleted;
    const ingest = join(this.root, "ingest");
    for (const name of await readdir(ingest).catch(() => [] as string[])) {
      try {
        if (now - (await stat(join(ingest, name))).mtimeMs >= options.ingestGraceMs) await rm(join(ingest, name), { force: true });
      } catch {
        // Renamed into place meanwhile.
      }
    }
    return deleted;
  }

  private tempPath(): string {
    return join(this.root, "ingest", `${process.pid}-${randomBytes(8).toString("hex")}`);
  }
}
