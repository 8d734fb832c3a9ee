import type { Digest } from "./digest.js";
import type { Platform } from "./platform.js";

/**
 * One input of an op: the output `output` of the op whose digest is `digest`. Ops refer to their
 * inputs by index into their own `inputs` array; a `null` index means "scratch" (an empty tree).
 */
export interface OpInput {
  readonly digest: Digest;
  readonly output: number;
}

/** An op: one vertex of a Definition. Its digest is sha256 of `canonicalJson(op)`. */
export type Op = SourceOp | ExecOp | FileOp | MergeOp | DiffOp;

/**
 * Brings a tree in from outside. Identifiers, as in BuildKit:
 * - `docker-image://NAME[:TAG][@DIGEST]`: an image, normally pinned by digest once resolved;
 * - `local://NAME`: a directory the caller provides (the build context); attrs `includepatterns`,
 *   `excludepatterns`, `followpaths` hold JSON arrays of patterns;
 * - `oci-layout://PATH@DIGEST`, `https://URL`, `git://…`.
 * Attrs are strings so that the serialization stays flat and canonical.
 */
export interface SourceOp {
  readonly kind: "source";
  readonly identifier: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly platform?: Platform;
}

export type NetworkMode = "default" | "none" | "host";
export type SecurityMode = "sandbox" | "insecure";

/** The process of an exec op. `env` entries are `KEY=VALUE`; `user` is as in USER (name, uid, name:group…). */
export interface ExecMeta {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user: string;
  readonly hostname?: string;
  /**
   * Proxy settings from `--build-arg HTTP_PROXY=…` and friends that the Dockerfile did not
   * declare with ARG (BuildKit's ExecOp `Meta.ProxyEnv`). The runner adds each set value to the
   * process environment in both spellings (`HTTP_PROXY` and `http_proxy`) unless `env` already
   * names it. Part of the op digest (the op does run with them), but not of `opCacheDigest`: a
   * proxy changes how the network is reached, not what the step computes, so a changed or new
   * proxy does not invalidate cached RUN steps.
   */
  readonly proxyEnv?: ProxyEnv;
}

/** The proxy variables of an exec op (only set ones are present). */
export interface ProxyEnv {
  readonly httpProxy?: string;
  readonly httpsProxy?: string;
  readonly ftpProxy?: string;
  readonly noProxy?: string;
  readonly allProxy?: string;
}

/**
 * Runs a process. The mount with target "/" is the root filesystem; mounts with an `output` index
 * produce that output of the op (the root is normally output 0).
 */
export interface ExecOp {
  readonly kind: "exec";
  readonly inputs: readonly OpInput[];
  readonly meta: ExecMeta;
  readonly mounts: readonly Mount[];
  readonly network: NetworkMode;
  readonly security: SecurityMode;
  readonly platform?: Platform;
}

export type Mount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

/** A tree from an input (or scratch) at `target`; `selector` is a path inside the input. */
export interface BindMount {
  readonly type: "bind";
  readonly target: string;
  readonly input: number | null;
  readonly selector: string;
  readonly readonly: boolean;
  /** Index of the op output this mount's final content becomes, or null when writes are discarded. */
  readonly output: number | null;
}

export type CacheSharing = "shared" | "private" | "locked";

/** A persistent cache directory shared across builds (RUN --mount=type=cache). Never an output. */
export interface CacheMount {
  readonly type: "cache";
  readonly target: string;
  readonly id: string;
  readonly sharing: CacheSharing;
  /** Optional initial content (the `from` option): an input index and a path inside it. */
  readonly input: number | null;
  readonly selector: string;
  readonly readonly: boolean;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface TmpfsMount {
  readonly type: "tmpfs";
  readonly target: string;
  /** Size limit in bytes; absent means the kernel's default. */
  readonly size?: number;
}

/** A secret file (at `target`) or environment variable (`env`). Its value is never part of an op. */
export interface SecretMount {
  readonly type: "secret";
  readonly id: string;
  readonly target?: string;
  readonly env?: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** A forwarded SSH agent socket at `target`. */
export interface SshMount {
  readonly type: "ssh";
  readonly id: string;
  readonly target: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Changes files. Actions apply in order to the tree of input `base` (null: scratch); the result is
 * the op's only output. Copy actions read from other inputs by index.
 */
export interface FileOp {
  readonly kind: "file";
  readonly inputs: readonly OpInput[];
  readonly base: number | null;
  readonly actions: readonly FileAction[];
  readonly platform?: Platform;
}

export type FileAction = MkdirAction | MkfileAction | RmAction | CopyAction;

/** A user or group, by number or by name (resolved against the tree's /etc/passwd, /etc/group). */
export type UserRef = { readonly id: number } | { readonly name: string };

export interface Chown {
  readonly user: UserRef;
  readonly group: UserRef | null;
}

export interface MkdirAction {
  readonly kind: "mkdir";
  readonly path: string;
  readonly mode: number;
  readonly makeParents: boolean;
  readonly owner: Chown | null;
  /** Modification time, seconds since the epoch; absent: now. */
  readonly timestamp?: number;
}

export interface MkfileAction {
  readonly kind: "mkfile";
  readonly path: string;
  readonly mode: number;
  /** Content, base64. */
  readonly data: string;
  readonly owner: Chown | null;
  readonly timestamp?: number;
}

export interface RmAction {
  readonly kind: "rm";
  readonly path: string;
  readonly allowNotFound: boolean;
  readonly allowWildcard: boolean;
}

/** Copies `src` of input `source` to `dest` of the tree, with COPY/ADD semantics. */
export interface CopyAction {
  readonly kind: "copy";
  readonly source: number;
  readonly src: string;
  readonly dest: string;
  readonly owner: Chown | null;
  /** An octal mode as a number, a symbolic mode as a string (`u+x`), or null to keep modes. */
  readonly mode: number | string | null;
  readonly followSymlinks: boolean;
  /** When src is a directory, copy its contents rather than the directory itself. */
  readonly dirContentsOnly: boolean;
  readonly createDestPath: boolean;
  readonly allowWildcard: boolean;
  readonly allowEmptyWildcard: boolean;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  /** ADD: unpack a local tar archive found by content. */
  readonly attemptUnpack: boolean;
  readonly alwaysReplaceExisting: boolean;
  readonly timestamp?: number;
}

/** Overlays its inputs in order (later wins), as `COPY --link` produces. */
export interface MergeOp {
  readonly kind: "merge";
  readonly inputs: readonly OpInput[];
}

/** The changes that turn `lower` into `upper` (indexes into inputs; null: scratch). */
export interface DiffOp {
  readonly kind: "diff";
  readonly inputs: readonly OpInput[];
  readonly lower: number | null;
  readonly upper: number | null;
}

/**
 * What rides beside an op without changing its digest: the progress name, a description, and
 * whether to skip the cache for it. Merged when two places of a Dockerfile produce the same op.
 */
export interface OpMetadata {
  /** The name progress shows, e.g. `[builder 2/3] RUN make`. */
  readonly name?: string;
  readonly description?: Readonly<Record<string, string>>;
  readonly ignoreCache?: boolean;
}

/** Throws at compile time when a switch over a union misses a case, and at run time if reached. */
export function assertNever(value: never, what = "value"): never {
  throw new TypeError(`Unexpected ${what}: ${JSON.stringify(value)}`);
}
