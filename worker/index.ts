export { ContentError, ContentStore } from "./content/content-store.js";
export type { IngestOptions, StoredBlob } from "./content/content-store.js";
export { LocalImages } from "./content/image-index.js";
export type { NamedImage } from "./content/image-index.js";
export { ExecError } from "./executor/errors.js";
export type { Executor, ProcessSpec } from "./executor/types.js";
export {
  familiarReference, formatReference, isIndexMediaType, isLoopbackDomain, isManifestMediaType, layerCompression, MediaTypes,
  parseReference, ReferenceError, withDigest,
} from "./oci/index.js";
export type { Descriptor, ImageIndex, LayerCompression, Manifest, Reference } from "./oci/index.js";
export { pushImage, RegistryClient, RegistryError } from "./registry/index.js";
export type { BlobPushOutcome, PushImageOptions, PushResult } from "./registry/index.js";
export type { ActiveSnapshot, LayerBlob, LayerSource, SnapshotId, SnapshotInfo, SnapshotMount, Snapshotter } from "./snapshotter/types.js";
export { snapshotUsage } from "./snapshotter/usage.js";
export { unpackImage } from "./snapshotter/unpack.js";
export { createWorker } from "./worker.js";
export type { BuildSession, ResolvedImage, ResolveImageOptions, Worker, WorkerOptions } from "./worker.js";
export type { SecretSource, SshSource } from "./ops/exec-secrets.js";
export { checkEntitlements, EntitlementError, ENTITLEMENTS, parseEntitlement } from "./ops/entitlements.js";
export type { Entitlement } from "./ops/entitlements.js";
export { BLOB_GRACE_MS, collectWorkerGarbage, SNAPSHOT_GRACE_MS } from "./garbage-collect.js";
export type { WorkerGcOptions, WorkerGcReport } from "./garbage-collect.js";
