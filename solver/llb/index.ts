export { canonicalJson } from "./canonical.js";
export { digestHex, isDigest, parseDigest, sha256 } from "./digest.js";
export type { Digest } from "./digest.js";
export { opCacheDigest, opDigest, opInputs, parseDefinition, serializeDefinition } from "./definition.js";
export type { Definition } from "./definition.js";
export type { HealthConfig, HistoryEntry, ImageConfig, ImageMetadata, ImageSpec } from "./image-config.js";
export { isKilnError, KilnError } from "./kiln-error.js";
export { assertNever } from "./ops.js";
export type {
  BindMount, CacheMount, CacheSharing, Chown, CopyAction, DiffOp, ExecMeta, ExecOp, FileAction, FileOp, MergeOp,
  MkdirAction, MkfileAction, Mount, NetworkMode, Op, OpInput, OpMetadata, ProxyEnv, RmAction, SecretMount, SecurityMode,
  SourceOp, SshMount, TmpfsMount, UserRef,
} from "./ops.js";
export { defaultPlatform, formatPlatform, normalizePlatform, parsePlatform, samePlatform } from "./platform.js";
export type { Platform } from "./platform.js";
export type { SourceInfo, SourceLocation, SourcePosition, SourceRange } from "./source-map.js";
export { exec, file, marshal, merge, source } from "./state.js";
export type { ExecSpec, FileActionSpec, MountSpec, Output, Tree, Vertex, VertexOptions } from "./state.js";
export { cleanPath, createPathMatcher, PathPatternError } from "./path-patterns.js";
export type { PathMatcher } from "./path-patterns.js";
