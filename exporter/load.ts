import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, readdir, rm, stat } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import type { Digest } from "../solver/llb/index.js";
import type { ContentStore } from "../worker/content/content-store.js";
import type { LocalImages } from "../worker/content/image-index.js";
import { formatReference, MediaTypes, parseReference, type Descriptor, type ImageIndex, type Manifest } from "../worker/oci/index.js";
import { ExportError } from "./errors.js";
import type { DockerArchiveManifestEntry } from "./docker-archive.js";
import { IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION } from "./oci-layout.js";

export interface LoadArchiveOptions {
  readonly content: ContentStore;
  readonly images: LocalImages;
  readonly signal?: AbortSignal;
}

/** One image an archive held: the names it was stored under (none: it had no name) and its manifest. */
export interface LoadedImage {
  readonly names: readonly string[];
  readonly manifest: Descriptor;
}

/**
 * `kiln load`, like `docker load`: reads an image archive (a tar, optionally gzip-compressed) into
 * the content store and names its images in the local store. Two shapes are read: an OCI image
 * layout (kiln's and BuildKit's `type=oci` and `type=docker` outputs, and `docker save` since
 * Docker 25), whose blobs are verified against their names and whose index.json entries are
 * named by `io.containerd.image.name`, else by a `org.opencontainers.image.ref.name` that is a
 * full reference; and the legacy `docker save` shape (manifest.json with Config, RepoTags and
 * Layers paths), from which a Docker schema 2 manifest is made (layers as stored, plain or gzip).
 * When an archive has both, the layout wins and manifest.json only adds RepoTags names.
 */
export async function loadArchive(source: string | Readable, options: LoadArchiveOptions): Promise<readonly LoadedImage[]> {
  const dir = join(options.content.root, "ingest", `load-${process.pid}-${randomBytes(6).toString("hex")}`);
  await mkdir(dir, { recursive: true });
  try {
    await extract(source, dir, options.signal);
    const hasLayout = await exists(join(dir, "index.json"));
    const dockerEntries = await readJsonIfExists<DockerArchiveManifestEntry[]>(join(dir, "manifest.json"));
    if (hasLayout) return await loadLayout(dir, dockerEntries ?? [], options);
    if (dockerEntries !== undefined) return await loadDockerSave(dir, dockerEntries, options);
    throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot load ${describe(source)}: it has neither index.json (an OCI layout) nor manifest.json (a docker archive)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function loadLayout(dir: string, dockerEntries: readonly DockerArchiveManifestEntry[], options: LoadArchiveOptions): Promise<LoadedImage[]> {
  const blobs = join(dir, "blobs", "sha256");
  for (const hex of await readdir(blobs).catch(() => [] as string[])) {
    const digest = `sha256:${hex}` as Digest;
    if (await options.content.has(digest)) continue;
    await options.content.ingest(createReadStream(join(blobs, hex)), { expected: digest, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  }
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as ImageIndex;
  const loaded: LoadedImage[] = [];
  for (const entry of index.manifests) {
    if (!(await options.content.has(entry.digest))) {
      throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot load the image "${entry.digest}": the archive's index.json names it but has no such blob`);
    }
    const names = new Set<string>();
    const full = entry.annotations?.[IMAGE_NAME_ANNOTATION];
    const refName = entry.annotations?.[REF_NAME_ANNOTATION];
    if (full !== undefined) names.add(full);
    else if (refName !== undefined && /[/:]/.test(refName)) names.add(refName);
    // manifest.json's RepoTags name the image whose config it points at.
    const manifest = await options.content.readJson<Manifest>(entry.digest);
    for (const docker of dockerEntries) {
      if (manifest.config !== undefined && docker.Config.endsWith(manifest.config.digest.slice("sha256:".length))) for (const tag of docker.RepoTags ?? []) names.add(tag);
    }
    const descriptor: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
    loaded.push({ names: await storeNames(descriptor, [...names], options.images), manifest: descriptor });
  }
  return loaded;
}

async function loadDockerSave(dir: string, entries: readonly DockerArchiveManifestEntry[], options: LoadArchiveOptions): Promise<LoadedImage[]> {
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const loaded: LoadedImage[] = [];
  for (const entry of entries) {
    const configBytes = await readFile(inside(dir, entry.Config));
    const config = await options.content.writeBytes(configBytes);
    const layers: Descriptor[] = [];
    for (const path of entry.Layers) {
      const file = inside(dir, path);
      const blob = await options.content.ingest(createReadStream(file), signal);
      layers.push({ mediaType: (await isGzip(file)) ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer, digest: blob.digest, size: blob.size });
    }
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: { mediaType: MediaTypes.dockerConfig, digest: config.digest, size: config.size },
      layers,
    };
    const stored = await options.content.writeBytes(Buffer.from(JSON.stringify(manifest)));
    const descriptor: Descriptor = { mediaType: MediaTypes.dockerManifest, digest: stored.digest, size: stored.size };
    loaded.push({ names: await storeNames(descriptor, entry.RepoTags ?? [], options.images), manifest: descriptor });
  }
  return loaded;
}

async function storeNames(descriptor: Descriptor, names: readonly string[], images: LocalImages): Promise<string[]> {
  const normalised = [...new Set(names.map((name) => formatReference(parseReference(name))))];
  for (const name of normalised) await images.set(name, descriptor);
  return normalised;
}

/** Unpacks regular files of the archive under `dir`, refusing paths that leave it. */
async function extract(source: string | Readable, dir: string, signal: AbortSignal | undefined): Promise<void> {
  const input = typeof source === "string" ? createReadStream(source) : source;
  const head = await peekGzip(input);
  const unpack = tar.extract();
  unpack.on("entry", (header, stream, next) => {
    if (header.type !== "file") {
      stream.resume();
      stream.on("end", next);
      return;
    }
    const target = inside(dir, header.name);
    mkdir(dirname(target), { recursive: true })
      .then(() => open(target, "w"))
      .then((handle) => pipeline(stream, handle.createWriteStream()))
      .then(() => next(), (error: unknown) => next(error instanceof Error ? error : new Error(String(error))));
  });
  try {
    const source = Readable.from(head.stream);
    const signalOption = signal === undefined ? {} : { signal };
    if (head.gzip) await pipeline(source, createGunzip(), unpack, signalOption);
    else await pipeline(source, unpack, signalOption);
  } catch (error) {
    if (error instanceof ExportError) throw error;
    throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot load ${describe(source)}: it is not a readable tar archive (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
}

/** `path` inside `dir`, or an error when it would leave it. */
function inside(dir: string, path: string): string {
  const clean = normalize(`/${path}`).slice(1);
  if (clean === "" || clean.startsWith("..")) throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot load the archive: its entry "${path}" points outside it`);
  return join(dir, clean);
}

/** Reads the first bytes to tell gzip from tar, and gives back a stream that still starts at byte 0. */
async function peekGzip(input: Readable): Promise<{ stream: AsyncIterable<Buffer>; gzip: boolean }> {
  const iterator = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = await iterator.next();
  const chunk = first.done === true ? Buffer.alloc(0) : first.value;
  const gzip = chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b;
  const stream = (async function* () {
    if (chunk.length > 0) yield chunk;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  })();
  return { stream, gzip };
}

async function isGzip(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(2);
    await handle.read(buffer, 0, 2, 0);
    return buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ExportError("KILN_IMPORT_INVALID_SOURCE", `Cannot load the archive: "${path.split("/").at(-1)}" is not JSON`, { cause: error });
  }
}

function describe(source: string | Readable): string {
  return typeof source === "string" ? `"${source}"` : "standard input";
}
