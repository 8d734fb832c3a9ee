import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { assertNever, KilnError, type Digest, type ImageSpec, type Platform } from "../solver/llb/index.js";
import type { ResolveOp, ResultRef } from "../solver/op.js";
import { ContentStore } from "./content/content-store.js";
import { LocalImages } from "./content/image-index.js";
import { layerSources } from "./differ/layer-sources.js";
import { createRuncExecutor } from "./executor/runc.js";
import type { Executor } from "./executor/types.js";
import { createImageResolver } from "./images/resolve-image.js";
import type { Descriptor, Manifest } from "./oci/index.js";
import { CacheMounts } from "./ops/exec-mounts.js";
import { createExecRunner } from "./ops/exec-op.js";
import type { SecretSource, SshSource } from "./ops/exec-secrets.js";
import type { Entitlement } from "./ops/entitlements.js";
import { createFileRunner } from "./ops/file-op.js";
import { createGitSourceRunner } from "./ops/source-git.js";
import { createHttpSourceRunner } from "./ops/source-http.js";
import { createImageSourceRunner } from "./ops/source-image.js";
import { createLocalSourceRunner } from "./ops/source-local.js";
import { recoverStaleState } from "./recovery.js";
import { RegistryClient } from "./registry/client.js";
import { createNativeSnapshotter } from "./snapshotter/native.js";
import { createOverlaySnapshotter } from "./snapshotter/overlay.js";
import { probeOverlayRemembered } from "./snapshotter/overlay-probe.js";
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
  /** Secrets by id for `RUN --mount=type=secret` (never in a layer, the history, a cache key or a log). */
  readonly secrets?: Readonly<Record<string, SecretSource>>;
  /** SSH agents by id for `RUN --mount=type=ssh`. */
  readonly ssh?: Readonly<Record<string, SshSource>>;
  /** What the build was granted (`--allow`), e.g. `security.insecure` for `RUN --security=insecure`. */
  readonly entitlements?: readonly Entitlement[];
}

/** How a worker is set up. */
export interface WorkerOptions {
  /** The state root: content/, snapshots/, executor/ live below it. */
  readonly root: string;
  /**
   * `auto` (default): overlay when a probe mount under the state root works, else `native` (see
   * `overlayUnavailable`); `overlay` or `native`: that one, no probe.
   */
  readonly snapshotter?: "auto" | "overlay" | "native";
  /** Registries (host[:port]) reached over plain HTTP though not on loopback. */
  readonly insecureRegistries?: readonly string[];
}

/**
 * The machine, as a small record of independent services (not one object with twenty methods):
 * each op runner receives only the services it uses. `resolveOp` binds a build's session (its
 * local directories) to the runners.
 */
export interface Worker {
  readonly root: string;
  readonly content: ContentStore;
  readonly images: LocalImages;
  readonly snapshotter: Snapshotter;
  /** Why `auto` chose the native snapshotter (the overlay probe's error); absent when it did not. */
  readonly overlayUnavailable?: string;
  readonly registry: RegistryClient;
  readonly executor: Executor;
  /** Finds an image by name (local store first, then its registry) and pins it by digest. */
  resolveImage(ref: string, options: ResolveImageOptions): Promise<ResolvedImage>;
  /** The runners for one build's ops. */
  resolveOp(session: BuildSession): ResolveOp;
  /** The layers of a result, base first, for the exporter. */
  layers(ref: ResultRef): Promise<LayerSource[]>;
  /** Releases what the worker holds open; running builds must have finished. */
  close(): Promise<void>;
}

/** Opens (creating when missing) the worker's state under `options.root`. */
export async function createWorker(options: WorkerOptions): Promise<Worker> {
  const root = options.root;
  await mkdir(root, { recursive: true, mode: 0o711 });
  const content = await ContentStore.open(join(root, "content"));
  const images = new LocalImages(content.root);
  // Before anything new is made: clean up after kiln processes that died mid-build on this root.
  await recoverStaleState(root);
  const { snapshotter, overlayUnavailable } = await openSnapshotter(join(root, "snapshots"), options.snapshotter ?? "auto");
  const registry = new RegistryClient({ insecure: [...(options.insecureRegistries ?? [])] });
  const executor = createRuncExecutor({ stateDir: join(root, "executor") });
  const resolveImage = createImageResolver({ content, images, registry });
  const execState = join(root, "executor");
  // One owner of cache mounts per worker, so `sharing=locked|private` coordinates across RUNs.
  const cacheMounts = new CacheMounts(join(execState, "cache-mounts"));
  return {
    root,
    content,
    images,
    snapshotter,
    ...(overlayUnavailable === undefined ? {} : { overlayUnavailable }),
    registry,
    executor,
    resolveImage,
    resolveOp: (session) => (vertex) => {
      const op = vertex.op;
      switch (op.kind) {
        case "source":
          if (op.identifier.startsWith("docker-image://")) return createImageSourceRunner({ content, registry, snapshotter }, vertex);
          if (op.identifier.startsWith("local://")) return createLocalSourceRunner({ snapshotter, session, stateDir: execState }, vertex);
          if (op.identifier.startsWith("git://")) return createGitSourceRunner({ snapshotter }, vertex);
          if (/^https?:\/\//u.test(op.identifier)) return createHttpSourceRunner({ snapshotter, stateDir: execState }, vertex);
          throw new KilnError("KILN_UNSUPPORTED_SOURCE", `Cannot run source "${op.identifier}": kiln does not support this kind of source yet`);
        case "exec":
          return createExecRunner({
            snapshotter, executor, stateDir: execState, cacheMounts,
            ...(session.secrets === undefined ? {} : { secrets: session.secrets }),
            ...(session.ssh === undefined ? {} : { ssh: session.ssh }),
            ...(session.entitlements === undefined ? {} : { entitlements: session.entitlements }),
          }, vertex);
        case "file":
          return createFileRunner({ snapshotter, stateDir: execState }, vertex);
        case "merge":
        case "diff":
          throw new KilnError("KILN_UNSUPPORTED_OP", `Cannot run a ${op.kind} op: not implemented yet`);
        default:
          return assertNever(op, "op");
      }
    },
    layers: (ref) => layerSources(snapshotter, ref.id),
    close: async () => {},
  };
}

/** The overlay snapshotter where overlay mounts here (probed once, for `auto`), else the copying one. */
async function openSnapshotter(dir: string, kind: "auto" | "overlay" | "native"): Promise<{ snapshotter: Snapshotter; overlayUnavailable?: string }> {
  switch (kind) {
    case "native":
      return { snapshotter: await createNativeSnapshotter(join(dir, "native")) };
    case "overlay":
      return { snapshotter: await createOverlaySnapshotter(join(dir, "overlay")) };
    case "auto": {
      const probe = await probeOverlayRemembered(join(dir, "overlay"));
      if (probe.ok) return { snapshotter: await createOverlaySnapshotter(join(dir, "overlay")) };
      return { snapshotter: await createNativeSnapshotter(join(dir, "native")), overlayUnavailable: probe.reason };
    }
    default:
      return assertNever(kind, "snapshotter");
  }
}
