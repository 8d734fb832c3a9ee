import type { Digest } from "../solver/llb/index.js";
import type { ContentStore } from "../worker/content/content-store.js";
import { formatReference, parseReference, type Reference } from "../worker/oci/index.js";
import type { RegistryClient } from "../worker/registry/client.js";
import { pushImage, type BlobPushOutcome, type PushResult } from "../worker/registry/push.js";
import { artifactBlobs, artifactManifests, rootDescriptor, type BuiltArtifact } from "./image/build-index.js";

export interface PushNamesOptions {
  /** Push by digest only, creating no tag (BuildKit's `push-by-digest=true`). */
  readonly byDigest?: boolean;
  /**
   * Repositories known to hold a blob, as `domain/path` (e.g. where a base image was pulled
   * from); those on the registry being pushed to are tried as cross-repository mount sources.
   */
  readonly knownLocations?: (digest: Digest) => readonly string[];
  readonly signal?: AbortSignal;
  readonly onBlob?: (repository: string, digest: Digest, outcome: BlobPushOutcome) => void;
  readonly onBytes?: (repository: string, digest: Digest, bytes: number) => void;
}

/** What pushing an image under its names did: per repository, how each blob got there. */
export interface PushedImage {
  /** The pushed manifest's digest. */
  readonly digest: Digest;
  /** Each repository pushed to (`domain/path`), with the tags set and every blob's outcome. */
  readonly repositories: readonly { readonly repository: string; readonly tags: readonly string[]; readonly result: PushResult }[];
}

/**
 * Pushes a built image, or a multi-platform image (every platform manifest, then the index), its
 * blobs in `content`, under `names`: names of one repository share one
 * push with several tags; repositories are pushed one after another, so a later repository of
 * the same registry mounts the blobs an earlier one received instead of uploading them again.
 * A name without a tag gets `latest`, as docker push does; `byDigest` sets no tag at all.
 */
export async function pushImageNames(image: BuiltArtifact, names: readonly string[], client: RegistryClient, content: ContentStore, options: PushNamesOptions = {}): Promise<PushedImage> {
  const byRepository = new Map<string, { ref: Reference; tags: Set<string> }>();
  for (const name of names) {
    const ref = parseReference(name);
    const key = `${ref.domain}/${ref.path}`;
    const entry = byRepository.get(key) ?? { ref, tags: new Set<string>() };
    if (options.byDigest !== true) entry.tags.add(ref.tag ?? "latest");
    byRepository.set(key, entry);
  }
  const pushedTo = new Set<string>();
  const repositories: PushedImage["repositories"][number][] = [];
  for (const [repository, { ref, tags }] of byRepository) {
    const mountSources = (digest: Digest): string[] => {
      const known = [...(options.knownLocations?.(digest) ?? []), ...pushedTo];
      return [...new Set(known.filter((location) => location.startsWith(`${ref.domain}/`)).map((location) => location.slice(ref.domain.length + 1)))];
    };
    const result = await pushImage(client, content, ref, {
      blobs: artifactBlobs(image),
      manifests: artifactManifests(image),
      tags: [...tags],
      mountSources,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onBlob === undefined ? {} : { onBlob: (d, outcome) => options.onBlob?.(repository, d.digest, outcome) }),
      ...(options.onBytes === undefined ? {} : { onBytes: (d, bytes) => options.onBytes?.(repository, d.digest, bytes) }),
    });
    pushedTo.add(repository);
    repositories.push({ repository, tags: [...tags], result });
  }
  return { digest: rootDescriptor(image).digest, repositories };
}

/** `name` normalised and pinned to `digest`, as BuildKit reports pushed names: `host/repo@sha256:…`. */
export function pinnedName(name: string, digest: Digest): string {
  const ref = parseReference(name);
  return formatReference({ domain: ref.domain, path: ref.path, digest });
}
