import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContentStore } from "../worker/content/content-store.js";
import { formatReference, MediaTypes, parseReference, type Descriptor, type ImageIndex } from "../worker/oci/index.js";
import { artifactBlobs, artifactManifests, rootDescriptor, type BuiltArtifact } from "./image/build-index.js";
import { blobPath, writeLayoutDirectory, writeLayoutTar, type LayoutFile } from "./layout-files.js";

/** The OCI annotation naming an image in a layout's index.json. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
/** containerd's annotation with the full image name, which BuildKit writes beside the OCI one. */
export const IMAGE_NAME_ANNOTATION = "io.containerd.image.name";

export interface OciLayoutOptions {
  /** The tar file, or the layout directory when `tar` is false. */
  readonly dest: string;
  readonly tar: boolean;
  /** Image names; each gets an index.json entry (see `layoutIndexEntries`). */
  readonly names?: readonly string[];
  readonly signal?: AbortSignal;
}

/**
 * Writes an image or a multi-platform image (its index is the index.json entry) as an OCI image
 * layout (`oci-layout`, `index.json`, `blobs/sha256/…`): as one
 * tar (replaced atomically, deterministic headers), or into a directory. A directory that already
 * is a layout keeps its other images: index.json entries with another `ref.name` stay, and
 * entries without a name or with one of this image's names are replaced. The blobs must be in `content`.
 */
export async function writeOciLayout(image: BuiltArtifact, content: ContentStore, options: OciLayoutOptions): Promise<void> {
  const entries = layoutIndexEntries(rootDescriptor(image), options.names ?? []);
  if (options.tar) {
    await writeLayoutTar(layoutFiles(image, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: entries }), content, options.dest, options.signal);
    return;
  }
  const existing = await readIndex(join(options.dest, "index.json"));
  const names = new Set(entries.map((d) => d.annotations?.[REF_NAME_ANNOTATION]));
  const kept = existing.filter((d) => {
    const name = d.annotations?.[REF_NAME_ANNOTATION];
    return name !== undefined && !names.has(name);
  });
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [...kept, ...entries] };
  await writeLayoutDirectory(layoutFiles(image, index), content, options.dest, options.signal);
}

/**
 * The index.json entries for an image (or index): one descriptor per name, keeping the
 * descriptor's own annotations (`annotation-manifest-descriptor.*`, `annotation-index-descriptor.*`), annotated the way
 * BuildKit's oci exporter (through containerd's archive writer) does: `org.opencontainers.image.ref.name`
 * holds the tag (the OCI spec's meaning, so `umoci unpack --image DIR:latest` works) and
 * `io.containerd.image.name` the full normalised name. No names: one entry named `latest`
 * (BuildKit leaves it unnamed; naming it lets `umoci unpack --image DIR`, whose default tag is
 * `latest`, find it, while skopeo still picks the only manifest without a tag).
 */
export function layoutIndexEntries(manifest: Descriptor, names: readonly string[]): Descriptor[] {
  const plain: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  const own = manifest.annotations ?? {};
  if (names.length === 0) return [{ ...plain, annotations: { ...own, [REF_NAME_ANNOTATION]: "latest" } }];
  return names.map((name) => {
    const ref = parseReference(name);
    const full = formatReference(ref);
    return { ...plain, annotations: { ...own, [IMAGE_NAME_ANNOTATION]: full, [REF_NAME_ANNOTATION]: ref.tag ?? full } };
  });
}

/** The files of a layout holding one image (or index) and `index`, metadata first, then blobs: configs, layers, manifests, the index. */
export function layoutFiles(image: BuiltArtifact, index: ImageIndex, extra: readonly LayoutFile[] = []): LayoutFile[] {
  const blobs = new Map<string, LayoutFile>();
  for (const d of [...artifactBlobs(image), ...artifactManifests(image)]) {
    blobs.set(d.digest, { kind: "blob", path: blobPath(d.digest), digest: d.digest, size: d.size });
  }
  return [
    { kind: "bytes", path: "oci-layout", bytes: Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })) },
    { kind: "bytes", path: "index.json", bytes: Buffer.from(JSON.stringify(index)) },
    ...extra,
    ...blobs.values(),
  ];
}

async function readIndex(path: string): Promise<readonly Descriptor[]> {
  try {
    return (JSON.parse(await readFile(path, "utf8")) as ImageIndex).manifests;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
