import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { digestHex, type Digest } from "../../solver/llb/index.js";
import { SnapshotError } from "./errors.js";
import type { LayerBlob, SnapshotId, SnapshotInfo } from "./types.js";

const ID_PATTERN = /^[0-9a-f]{32}$/;

/**
 * The on-disk records of a snapshotter, shared by the overlay and native kinds:
 *
 * ```
 * root/snapshots/<id>/fs     the snapshot's directory (overlay: its upperdir; native: the full tree)
 * root/snapshots/<id>/work   overlay's workdir, while active
 * root/meta/<id>.json        its SnapshotInfo
 * root/chains/<hex>          the id of the committed snapshot unpacked for chain id sha256:<hex>
 * root/active/<id>           the owner tag (worker/process-owner.ts) of a snapshot being written
 * root/empty                 an empty directory (the view of "no snapshot")
 * ```
 *
 * Every record is written to a temp file and renamed, so a crash leaves either the old record or
 * the new one, never half of one. Concurrent processes on one root only ever rename whole files;
 * for one chain id the last commit wins, and both snapshots stay valid.
 */
export class SnapshotStore {
  readonly root: string;
  /**
   * Committed records this store has read or written: a committed snapshot's record changes only
   * through this store (`setBlob`) or goes away with it (`deleteRecord`), so `chain` walks parents
   * from memory and preparing a step on a deep chain reads one record, not the whole chain.
   * Only `chain` answers from here: `tryRead` (and so `exists`) always asks the disk, where another
   * process may have removed a record.
   */
  readonly #committed = new Map<SnapshotId, SnapshotInfo>();

  private constructor(root: string) {
    this.root = root;
  }

  static async open(root: string): Promise<SnapshotStore> {
    for (const dir of ["snapshots", "meta", "chains", "empty", "active"]) await mkdir(join(root, dir), { recursive: true });
    return new SnapshotStore(root);
  }

  /** A fresh random snapshot id (unique across processes). */
  newId(): SnapshotId {
    return randomBytes(16).toString("hex");
  }

  dir(id: SnapshotId): string {
    return join(this.root, "snapshots", checkId(id));
  }

  fsDir(id: SnapshotId): string {
    return join(this.dir(id), "fs");
  }

  workDir(id: SnapshotId): string {
    return join(this.dir(id), "work");
  }

  emptyDir(): string {
    return join(this.root, "empty");
  }

  async tryRead(id: SnapshotId): Promise<SnapshotInfo | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    let text: string;
    try {
      // Synchronous: a record is a few hundred bytes, and a cached build checks one per step;
      // inline it costs less than the four thread-pool trips of an asynchronous readFile.
      text = readFileSync(this.metaPath(id), "utf8");
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const info = JSON.parse(text) as SnapshotInfo;
    this.#remember(info);
    return info;
  }

  async read(id: SnapshotId): Promise<SnapshotInfo> {
    const info = await this.tryRead(id);
    if (info === undefined) throw new SnapshotError("KILN_SNAPSHOT_NOT_FOUND", `Cannot find snapshot "${id}": no such snapshot in "${this.root}"`);
    return info;
  }

  async readCommitted(id: SnapshotId, purpose: string): Promise<SnapshotInfo> {
    const info = await this.read(id);
    if (info.kind !== "committed") throw new SnapshotError("KILN_SNAPSHOT_STATE", `Cannot ${purpose} snapshot "${id}": it is still active, not committed`);
    return info;
  }

  async write(info: SnapshotInfo): Promise<void> {
    this.#committed.delete(info.id);
    await writeAtomic(this.metaPath(info.id), JSON.stringify(info));
    this.#remember(info);
  }

  async deleteRecord(id: SnapshotId): Promise<void> {
    this.#committed.delete(id);
    await rm(this.metaPath(id), { force: true });
  }

  /** The snapshot and its ancestors, base first. */
  async chain(id: SnapshotId): Promise<SnapshotInfo[]> {
    const chain: SnapshotInfo[] = [];
    for (let current: SnapshotId | null = id; current !== null; ) {
      const info: SnapshotInfo = this.#committed.get(current) ?? (await this.read(current));
      chain.push(info);
      current = info.parent;
    }
    return chain.reverse();
  }

  #remember(info: SnapshotInfo): void {
    if (info.kind === "committed") this.#committed.set(info.id, info);
    else this.#committed.delete(info.id);
  }

  /** Ids of the snapshots (active or committed) whose parent is `id`. */
  async children(id: SnapshotId): Promise<SnapshotId[]> {
    const children: SnapshotId[] = [];
    for (const name of await readdir(join(this.root, "meta"))) {
      if (!name.endsWith(".json")) continue;
      const info = await this.tryRead(name.slice(0, -".json".length));
      if (info?.parent === id) children.push(info.id);
    }
    return children;
  }

  async recordChain(chainId: Digest, id: SnapshotId): Promise<void> {
    await writeAtomic(this.chainPath(chainId), id);
  }

  async findChain(chainId: Digest): Promise<SnapshotId | undefined> {
    let id: string;
    try {
      id = readFileSync(this.chainPath(chainId), "utf8").trim();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const info = await this.tryRead(id);
    return info?.kind === "committed" && info.chainId === chainId ? id : undefined;
  }

  /** Forgets the chain index entry for `chainId` when it still names `id`. */
  async forgetChain(chainId: Digest, id: SnapshotId): Promise<void> {
    try {
      if ((await readFile(this.chainPath(chainId), "utf8")).trim() === id) await rm(this.chainPath(chainId), { force: true });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async setBlob(id: SnapshotId, blob: LayerBlob): Promise<void> {
    const info = await this.readCommitted(id, "set the layer blob of");
    await this.write({ ...info, blob });
  }

  /**
   * Marks `id` as written by the process `owner` until `clearActive`: a small index of the
   * snapshots in flight, so that start-up recovery reads a handful of files, not every record.
   */
  async markActive(id: SnapshotId, owner: string): Promise<void> {
    await writeAtomic(join(this.root, "active", checkId(id)), owner);
  }

  clearActive(id: SnapshotId): Promise<void> {
    rmSync(join(this.root, "active", checkId(id)), { force: true });
    return Promise.resolve();
  }

  /** The snapshots marked active, with their owner tags. */
  async listActive(): Promise<{ readonly id: SnapshotId; readonly owner: string }[]> {
    const marks: { id: SnapshotId; owner: string }[] = [];
    for (const name of await readdir(join(this.root, "active"))) {
      if (!ID_PATTERN.test(name)) continue;
      try {
        marks.push({ id: name, owner: (await readFile(join(this.root, "active", name), "utf8")).trim() });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return marks;
  }

  private metaPath(id: SnapshotId): string {
    return join(this.root, "meta", `${checkId(id)}.json`);
  }

  private chainPath(chainId: Digest): string {
    return join(this.root, "chains", digestHex(chainId));
  }
}

function checkId(id: SnapshotId): SnapshotId {
  if (!ID_PATTERN.test(id)) throw new SnapshotError("KILN_SNAPSHOT_NOT_FOUND", `Cannot find snapshot "${id}": not a snapshot id (32 hex digits)`);
  return id;
}

/**
 * Writes a small record through a temp file and a rename. Synchronous inside: three tiny calls
 * cost less than three trips through libuv's thread pool, which a busy machine makes slow.
 */
async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(temp, text);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  return Promise.resolve();
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}
