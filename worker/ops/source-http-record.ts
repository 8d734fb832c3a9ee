import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../../solver/llb/index.js";
import type { SnapshotId } from "../snapshotter/types.js";

/** One earlier download of a URL: what the server said about it and the snapshot that holds it. */
export interface HttpDownload {
  /** sha256 of the downloaded bytes. */
  readonly digest: Digest;
  /** The file name inside the snapshot. */
  readonly filename: string;
  /** The ETag the server gave (without a weak `W/` prefix), if any. */
  readonly etag?: string;
  /** The Last-Modified header as the server sent it, if any. */
  readonly lastModified?: string;
  readonly snapshot: SnapshotId;
}

/** How many downloads of one URL are remembered (newest first): enough for content that flips back and forth. */
const KEEP = 8;

/**
 * What kiln remembers about the downloads of one http(s) source (BuildKit keeps the same facts as
 * metadata on its cache refs, searched by a hash of the URL and the file options): a JSON file
 * per `key` under `dir`, replaced atomically. A missing or unreadable file is an empty history;
 * concurrent builds may overwrite each other's entry, which costs at most a download.
 */
export class HttpDownloadRecord {
  readonly #file: string;
  /** Newest first. */
  readonly downloads: readonly HttpDownload[];

  private constructor(file: string, downloads: readonly HttpDownload[]) {
    this.#file = file;
    this.downloads = downloads;
  }

  static async open(dir: string, key: string): Promise<HttpDownloadRecord> {
    const file = join(dir, `${key}.json`);
    try {
      const data = JSON.parse(await readFile(file, "utf8")) as { downloads?: unknown };
      if (Array.isArray(data.downloads)) return new HttpDownloadRecord(file, data.downloads.filter(isDownload));
    } catch {
      // Starts empty.
    }
    return new HttpDownloadRecord(file, []);
  }

  /** Remembers `download` as the newest (replacing an entry for the same snapshot) and writes the file. */
  async add(download: HttpDownload): Promise<HttpDownloadRecord> {
    const downloads = [download, ...this.downloads.filter((d) => d.snapshot !== download.snapshot)].slice(0, KEEP);
    await mkdir(join(this.#file, ".."), { recursive: true });
    const temp = `${this.#file}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(temp, JSON.stringify({ downloads }));
      await rename(temp, this.#file);
    } finally {
      await rm(temp, { force: true });
    }
    return new HttpDownloadRecord(this.#file, downloads);
  }
}

function isDownload(value: unknown): value is HttpDownload {
  if (typeof value !== "object" || value === null) return false;
  const d = value as Record<string, unknown>;
  const optional = (v: unknown) => v === undefined || typeof v === "string";
  return typeof d["digest"] === "string" && typeof d["filename"] === "string" && typeof d["snapshot"] === "string" && optional(d["etag"]) && optional(d["lastModified"]);
}
