import type { Digest, ImageSpec, Platform } from "../solver/llb/index.js";
import type { ResolveOp, ResultRef } from "../solver/op.js";
import type { ContentStore } from "./content/content-store.js";
import type { LocalImages } from "./content/image-index.js";
import type { Descriptor, Manifest } from "./oci/index.js";
import type { LayerSource, Snapshotter } from "./snapshotter/types.js";

/** An image found by name, pinned to the manifest digest for the requested platform. */
export interface ResolvedImage {
  /** The canonical reference pinned by digest, e.g. `docker.io/library/busybox:latest@sha256:…`. */
  readonly ref: string;
  readonly manifestDigest: Digest;
  readonly manifest: Manifest;
  readonly config: ImageSpec;
  readonly configDescriptor: Descriptor;
  /** Where it was found: kiln's local image store, or a registry. */
  readonly from: "local" | "registry";
}

export interface ResolveImageOptions {
  readonly platform: Platform;
  readonly signal?: AbortSignal;
  /** `missing` (default): the local store first, then the registry; `always`: the registry. */
  readonly pull?: "missing" | "always";
}

/** What a build gives the worker beyond the Definition: the directories behind `local://NAME` sources. */
export interface BuildSession {
  readonly localDirs: Readonly<Record<string, string>>;
}
