import { defaultPlatform, formatPlatform, KilnError, sha256, type Digest, type ImageSpec, type Platform } from "../../solver/llb/index.js";
import type { CacheMap, OpContext, OpRunner, ResultRef, SolverVertex } from "../../solver/op.js";
import type { ContentStore } from "../content/content-store.js";
import { formatReference, parseReference, withDigest, type Manifest, type Reference } from "../oci/index.js";
import { parseManifestDocument, pullBlobs, selectManifest, type RegistryClient } from "../registry/index.js";
import { unpackImage, type Snapshotter } from "../snapshotter/index.js";

const SCHEME = "docker-image://";

/** A `docker-image://` source op that cannot be run as written, or an image that is inconsistent. */
export class ImageSourceError extends KilnError {
  constructor(code: "KILN_IMAGE_SOURCE_INVALID" | "KILN_IMAGE_INVALID", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface ImageSourceDeps {
  readonly content: ContentStore;
  readonly registry: RegistryClient;
  readonly snapshotter: Snapshotter;
}

/**
 * The runner of a `docker-image://REF[@DIGEST]` source op (platform: the op's, else this machine's).
 *
 * Cache map: a digest-pinned reference fixes the content, so the op digest itself is the cache
 * digest and there are no inputs. An unpinned reference is resolved through the registry first
 * and the cache digest covers the manifest digest it resolved to, so a moved tag is a cache miss.
 *
 * Run: makes sure the manifest (through an index when the digest names one), the config and every
 * layer blob are in the content store, downloading only what is missing (in parallel, verified,
 * reported as `progress.bytes(layerDigest, current, size)`), then unpacks the layers into
 * committed snapshots (reusing ones already unpacked for the same chain) and returns the top
 * one. An image with no layers yields a committed empty snapshot. A pinned image already in the
 * content store needs no network at all.
 */
export function createImageSourceRunner(deps: ImageSourceDeps, vertex: SolverVertex): OpRunner {
  const op = vertex.op;
  if (op.kind !== "source" || !op.identifier.startsWith(SCHEME)) {
    throw new ImageSourceError("KILN_IMAGE_SOURCE_INVALID", `Cannot run vertex "${vertex.digest}" as an image source: it is not a "${SCHEME}" source op`);
  }
  const ref = parseReference(op.identifier.slice(SCHEME.length));
  const platform = op.platform ?? defaultPlatform();
  let pinned: Promise<Reference> | undefined;
  const pin = (signal: AbortSignal): Promise<Reference> => {
    if (ref.digest !== undefined) return Promise.resolve(ref);
    pinned ??= deps.registry.resolve(ref, platform, signal).then((resolved) => resolved.ref);
    return pinned;
  };

  return {
    async cacheMap(context: OpContext): Promise<CacheMap> {
      if (ref.digest !== undefined) return { digest: vertex.digest, deps: [], explain: { resolved: formatReference(ref) } };
      const resolved = await pin(context.signal);
      return { digest: sha256(`${SCHEME}${formatReference(resolved)} ${formatPlatform(platform)}`), deps: [], explain: { resolved: formatReference(resolved) } };
    },

    async run(_inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      const { signal, progress } = context;
      const image = await pin(signal);
      const manifest = await ensureManifest(deps, image, platform, signal);
      await pullBlobs(deps.registry, image, [manifest.config, ...manifest.layers], deps.content, {
        signal,
        onBytes: (descriptor, bytes) => progress.bytes(descriptor.digest, bytes, descriptor.size),
      });
      const config = await deps.content.readJson<ImageSpec>(manifest.config.digest);
      const diffIds = (config.rootfs?.diff_ids ?? []) as readonly Digest[];
      if (diffIds.length !== manifest.layers.length) {
        throw new ImageSourceError(
          "KILN_IMAGE_INVALID",
          `Cannot unpack image "${formatReference(image)}": its manifest has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff ids`,
        );
      }
      const top = await unpackImage({ snapshotter: deps.snapshotter, content: deps.content, layers: manifest.layers, diffIds, signal });
      if (top !== null) return [{ id: top }];
      const empty = await deps.snapshotter.prepare(null);
      return [{ id: await deps.snapshotter.commit(empty) }];
    },
  };
}

/**
 * The image manifest `image` (pinned) names for `platform`, read from the content store or
 * fetched and stored there (with the index on the way when the digest names one).
 */
async function ensureManifest(deps: ImageSourceDeps, image: Reference, platform: Platform, signal: AbortSignal): Promise<Manifest> {
  let digest = image.digest!;
  for (let depth = 0; depth < 2; depth++) {
    const what = `manifest "${formatReference(withDigest(image, digest))}"`;
    let bytes: Buffer;
    if (await deps.content.has(digest)) {
      bytes = await deps.content.readBytes(digest);
    } else {
      const fetched = await deps.registry.fetchManifest(withDigest(image, digest), signal);
      await deps.content.writeBytes(fetched.bytes, { expected: digest });
      bytes = fetched.bytes;
    }
    const doc = parseManifestDocument(bytes, undefined, what);
    if (doc.kind === "manifest") return doc.manifest;
    digest = selectManifest(doc.index, platform, formatReference(image)).digest;
  }
  throw new ImageSourceError("KILN_IMAGE_INVALID", `Cannot unpack image "${formatReference(image)}": its index points to another index`);
}
