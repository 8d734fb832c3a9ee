import type { Readable } from "node:stream";
import type { Digest } from "../../solver/llb/index.js";
import type { Descriptor } from "../oci/index.js";

/**
 * Snapshots are directories of filesystem changes stacked on a parent (containerd's model). An
 * active snapshot is writable and private to one op; a committed one is immutable and may be the
 * parent of many. A snapshot id is a ResultRef id, so it must stay valid across processes.
 */
export type SnapshotId = string;

/** How to see a snapshot: an overlay of directories, or a plain bind of one directory. */
export type SnapshotMount =
  | {
      readonly kind: "overlay";
      /** Topmost first. */
      readonly lowerdirs: readonly string[];
      readonly upperdir?: string;
      readonly workdir?: string;
      readonly userxattr: boolean;
      readonly readonly: boolean;
    }
  | { readonly kind: "bind"; readonly source: string; readonly readonly: boolean };

/** A compressed layer blob in the content store whose uncompressed tar is this snapshot's diff from its parent. */
export interface LayerBlob {
  readonly descriptor: Descriptor;
  /** sha256 of the uncompressed tar. */
  readonly diffId: Digest;
}

export interface SnapshotInfo {
  readonly id: SnapshotId;
  readonly parent: SnapshotId | null;
  readonly kind: "active" | "committed";
  /** Milliseconds since the epoch. */
  readonly created: number;
  /** The layer blob already made for this snapshot (pulled, imported or exported before). */
  readonly blob?: LayerBlob;
  /** The OCI chain id of the layers up to here, for snapshots unpacked from image layers. */
  readonly chainId?: Digest;
}

/** A writable snapshot. `upperdir` is where its own changes land (for the native snapshotter, the full tree). */
export interface ActiveSnapshot {
  readonly id: SnapshotId;
  readonly parent: SnapshotId | null;
  readonly upperdir: string;
  /** The writable view: the parent chain as lowers, `upperdir` on top. */
  readonly mount: SnapshotMount;
}

export interface CommitOptions {
  readonly blob?: LayerBlob;
  readonly chainId?: Digest;
}

export interface Snapshotter {
  readonly kind: "overlay" | "native";
  /** A new writable snapshot on top of `parent` (null: empty). Released by commit or abort. */
  prepare(parent: SnapshotId | null): Promise<ActiveSnapshot>;
  /** Makes an active snapshot immutable; returns its id (which is the active one's id). */
  commit(active: ActiveSnapshot, options?: CommitOptions): Promise<SnapshotId>;
  /** Discards an active snapshot and its directories. */
  abort(active: ActiveSnapshot): Promise<void>;
  /** A read-only view of a committed snapshot's whole tree (null: empty tree). */
  view(id: SnapshotId | null): Promise<SnapshotMount>;
  info(id: SnapshotId): Promise<SnapshotInfo>;
  exists(id: SnapshotId): Promise<boolean>;
  /** The snapshot and its ancestors, base first, `id` last. */
  chain(id: SnapshotId): Promise<readonly SnapshotInfo[]>;
  /** Remembers the layer blob made for a committed snapshot. */
  setBlob(id: SnapshotId, blob: LayerBlob): Promise<void>;
  /** The committed snapshot unpacked for this chain id, if any. */
  findChain(chainId: Digest): Promise<SnapshotId | undefined>;
  /** Removes a committed snapshot; refuses while another snapshot has it as parent. */
  remove(id: SnapshotId): Promise<void>;
  /**
   * Drops this process's leases (see snapshot-leases.ts): call only when no build of this process
   * is running, so a long-lived process (`kiln serve`) does not pin every snapshot it ever used.
   * Snapshotters without leases leave it out.
   */
  releaseLeases?(): void;
}

/**
 * One layer of an image-to-be, for the exporter: a snapshot's own changes. `blob` is set when a
 * compressed blob already exists (pulled base layers, earlier exports); `openTar` opens a fresh
 * uncompressed, deterministic tar of the changes (whiteouts as `.wh.` entries) each time it is called.
 */
export interface LayerSource {
  readonly snapshot: SnapshotId;
  readonly blob: LayerBlob | undefined;
  /** When the snapshot was committed (ms since the epoch): the time its history line gets. */
  readonly created?: number;
  openTar(signal?: AbortSignal): Readable;
}
