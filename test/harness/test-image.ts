import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import type { Digest, ImageSpec, Platform } from "../../solver/llb/index.js";
import type { Descriptor, ImageIndex, Manifest } from "../../worker/oci/index.js";

/** One file of a test layer; directories are implied by paths. */
export interface TestFile {
  readonly path: string;
  readonly content: string;
  readonly mode?: number;
}

export interface TestImageOptions {
  /** The name recorded in the layout's index.json, e.g. `test:latest`. */
  readonly ref: string;
  /** One image per platform; more than one makes an OCI index. Default: linux/amd64. */
  readonly platforms?: readonly Platform[];
  /** Layers, bottom first; each a list of files. Default: one layer with `/hello.txt`. */
  readonly layers?: readonly (readonly TestFile[])[];
  readonly cmd?: readonly string[];
}

/** What was written, with the digests a test asserts on. */
export interface TestImage {
  /** The descriptor index.json names: a manifest, or an index when there are several platforms. */
  readonly top: Descriptor;
  readonly images: readonly {
    readonly platform: Platform;
    readonly manifest: Descriptor;
    readonly config: Descriptor;
    readonly layers: readonly Descriptor[];
    readonly diffIds: readonly Digest[];
  }[];
}

/**
 * Writes a small OCI image layout at `dir` (created when missing): gzip layers made with
 * tar-stream + zlib, a config and a manifest per platform, and an index over them when there are
 * several. The layer contents of each platform carry the platform's name in `/platform.txt`, so
 * tests can tell which one was pulled. Deterministic: same options, same digests.
 */
export async function writeTestImage(dir: string, options: TestImageOptions): Promise<TestImage> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const platforms = options.platforms ?? [{ os: "linux", architecture: "amd64" }];
  const layerFiles = options.layers ?? [[{ path: "hello.txt", content: "hello from kiln\n" }]];
  const images: TestImage["images"][number][] = [];
  for (const platform of platforms) {
    const name = [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
    const layers: Descriptor[] = [];
    const diffIds: Digest[] = [];
    for (const [i, files] of layerFiles.entries()) {
      const all = i === 0 ? [...files, { path: "platform.txt", content: `${name}\n` }] : files;
      const tar = await makeTar(all);
      diffIds.push(digestOf(tar));
      layers.push(await writeBlob(dir, "application/vnd.oci.image.layer.v1.tar+gzip", gzipSync(tar, { level: 6 })));
    }
    const spec: ImageSpec = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      config: { Env: ["PATH=/usr/bin:/bin"], Cmd: [...(options.cmd ?? ["/bin/sh"])] },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: layerFiles.map((_, i) => ({ created_by: `test layer ${i}` })),
    };
    const config = await writeBlob(dir, "application/vnd.oci.image.config.v1+json", Buffer.from(JSON.stringify(spec)));
    const manifest: Manifest = { schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers };
    const manifestDescriptor = await writeBlob(dir, "application/vnd.oci.image.manifest.v1+json", Buffer.from(JSON.stringify(manifest)));
    images.push({ platform, manifest: { ...manifestDescriptor, platform }, config, layers, diffIds });
  }
  let top: Descriptor;
  if (images.length === 1) {
    top = images[0]!.manifest;
    top = { mediaType: top.mediaType, digest: top.digest, size: top.size };
  } else {
    const index: ImageIndex = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: images.map((i) => i.manifest) };
    top = await writeBlob(dir, "application/vnd.oci.image.index.v1+json", Buffer.from(JSON.stringify(index)));
  }
  await addToIndex(dir, options.ref, top);
  return { top, images };
}

async function addToIndex(dir: string, ref: string, descriptor: Descriptor): Promise<void> {
  const file = join(dir, "index.json");
  let index: ImageIndex = { schemaVersion: 2, manifests: [] };
  try {
    index = JSON.parse(await readFile(file, "utf8")) as ImageIndex;
  } catch {
    // A new layout.
  }
  const refName = "org.opencontainers.image.ref.name";
  const manifests = [...index.manifests.filter((d) => d.annotations?.[refName] !== ref), { ...descriptor, annotations: { [refName]: ref } }];
  await writeFile(file, JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }));
}

async function writeBlob(dir: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = digestOf(bytes);
  await writeFile(join(dir, "blobs", "sha256", digest.slice("sha256:".length)), bytes);
  return { mediaType, digest, size: bytes.byteLength };
}

function digestOf(bytes: Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
}

/** An uncompressed tar of `files` with fixed owners and times. */
export async function makeTar(files: readonly TestFile[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    tar.on("data", (chunk: unknown) => {
      chunks.push(chunk as Buffer);
    });
    tar.on("end", () => resolve(Buffer.concat(chunks)));
    tar.on("error", reject);
  });
  const mtime = new Date(0);
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.path.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (dirs.has(d)) continue;
      dirs.add(d);
      tar.entry({ name: `${d}/`, type: "directory", mode: 0o755, uid: 0, gid: 0, mtime });
    }
    tar.entry({ name: file.path, type: "file", mode: file.mode ?? 0o644, uid: 0, gid: 0, mtime }, file.content);
  }
  tar.finalize();
  return done;
}
