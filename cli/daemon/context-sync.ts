import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, symlink, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { assertNever, KilnError } from "../../solver/llb/index.js";
import { lutimesNs } from "../../worker/syscalls.js";
import { SYNC_CONTEXT, SYNC_DOCKERFILE, type SyncEntry } from "./protocol.js";

/** A sync listing entry that would write outside the synced tree: refused before anything is written. */
export class SyncEscapeError extends KilnError {
  constructor(path: string, why: string) {
    super("KILN_CONTEXT_ESCAPE", `Cannot sync the context: entry "${path}" ${why}`);
  }
}

/** What one sync moved. */
export interface SyncStats {
  /** Regular files whose content travelled. */
  readonly files: number;
  /** Bytes of content that travelled. */
  readonly bytes: number;
  /** Entries removed because the listing no longer had them (or had them as another type). */
  readonly deleted: number;
}

/** A manifest mtime that never matches a listing: the content on disk is not known to be the listed one. */
const UNKNOWN_MTIME = "-1";
const MANIFEST = "manifest.json";

/**
 * The daemon's side of one incremental context sync into a kept directory `dir` (its `tree/`
 * is what builds read; `manifest.json` records the listing the tree last matched). The order is
 * add → plan → (beginFile → write…)… → finish:
 *
 * - `plan()` validates the listing (see validateListing), compares it with the manifest, removes
 *   what is gone or changed type, creates directories and symlinks, and returns the regular files
 *   whose content must travel: new ones and those whose size or mtime differ.
 * - `finish()` renames received files into place, applies modes and times (directories last,
 *   deepest first) and writes the new manifest.
 *
 * Crash safety: the manifest is removed before the tree changes and written back after, so a
 * tree without one is of unknown state and is emptied before the next sync.
 */
export class ContextSync {
  readonly tree: string;
  readonly #dir: string;
  readonly #entries: SyncEntry[] = [];
  #old = new Map<string, SyncEntry>();
  #wanted = new Set<string>();
  #received = new Map<string, number>();
  #current: { path: string; temp: string; handle: FileHandle; bytes: number } | undefined;
  #bytes = 0;
  #deleted = 0;

  private constructor(dir: string) {
    this.#dir = dir;
    this.tree = join(dir, "tree");
  }

  /** Opens the kept directory `dir` (created when missing). */
  static async open(dir: string): Promise<ContextSync> {
    const sync = new ContextSync(dir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      const recorded = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as SyncEntry[];
      sync.#old = new Map(recorded.map((e) => [e.path, e]));
    } catch {
      // No manifest (first sync, or one that did not finish): start from an empty tree.
      await rm(sync.tree, { recursive: true, force: true });
    }
    await mkdir(sync.tree, { recursive: true, mode: 0o700 });
    return sync;
  }

  add(entries: readonly SyncEntry[]): void {
    for (const entry of entries) this.#entries.push(entry);
  }

  /** Brings the tree's shape in line with the listing and returns the paths whose content must be sent, in listing order. */
  async plan(): Promise<string[]> {
    validateListing(this.#entries);
    await rm(join(this.#dir, MANIFEST), { force: true });
    const listed = new Map(this.#entries.map((e) => [e.path, e]));
    // Deepest first, so a directory's entries go before it.
    const stale = [...this.#old.values()].filter((old) => !sameShape(old, listed.get(old.path))).sort((a, b) => depth(b.path) - depth(a.path));
    for (const old of stale) {
      await rm(join(this.tree, old.path), { recursive: true, force: true });
      this.#old.delete(old.path);
      this.#deleted++;
    }
    const wanted: string[] = [];
    for (const entry of this.#entries) {
      const old = this.#old.get(entry.path);
      const path = join(this.tree, entry.path);
      switch (entry.kind) {
        case "dir":
          if (old === undefined) await mkdir(path, { recursive: true, mode: 0o700 });
          break;
        case "symlink":
          if (old === undefined) await symlink(entry.target ?? "", path);
          break;
        case "file":
          if (old === undefined || old.size !== entry.size || old.mtimeNs !== entry.mtimeNs) wanted.push(entry.path);
          break;
        default:
          assertNever(entry.kind);
      }
    }
    this.#wanted = new Set(wanted);
    return wanted;
  }

  /** The data that follows is the content of `path`, which plan() asked for. */
  async beginFile(path: string): Promise<void> {
    await this.#closeFile();
    if (!this.#wanted.has(path) || this.#received.has(path)) {
      throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot accept the content of "${path}": the daemon did not ask for it, or already has it`);
    }
    const temp = join(this.#dir, `.incoming-${randomBytes(6).toString("hex")}`);
    this.#current = { path, temp, handle: await open(temp, "wx", 0o600), bytes: 0 };
  }

  async write(bytes: Buffer): Promise<void> {
    const current = this.#current;
    if (current === undefined) throw new KilnError("KILN_DAEMON_PROTOCOL", "Cannot accept file data before a sync.file message");
    await current.handle.write(bytes);
    current.bytes += bytes.length;
    this.#bytes += bytes.length;
  }

  /** Applies modes and times, records the manifest, and says what travelled. */
  async finish(): Promise<SyncStats> {
    await this.#closeFile();
    const manifest: SyncEntry[] = [];
    const dirs: SyncEntry[] = [];
    for (const entry of this.#entries) {
      const old = this.#old.get(entry.path);
      const path = join(this.tree, entry.path);
      const received = this.#received.get(entry.path);
      if (entry.kind === "file" && this.#wanted.has(entry.path) && received === undefined) {
        // Asked for and never sent (the client could not read it): not part of this context.
        await rm(path, { force: true });
        continue;
      }
      if (entry.kind === "dir") dirs.push(entry);
      else {
        if (entry.kind === "file" && (received !== undefined || old?.mode !== entry.mode)) await chmod(path, entry.mode);
        if (received !== undefined || old?.mtimeNs !== entry.mtimeNs) lutimesNs(path, BigInt(entry.mtimeNs), BigInt(entry.mtimeNs));
      }
      // A file that changed while it was sent is not known to match its listing: ask again next time.
      manifest.push(received !== undefined && received !== entry.size ? { ...entry, mtimeNs: UNKNOWN_MTIME } : entry);
    }
    // Directories last, deepest first: what was written inside them moved their times.
    for (const dir of dirs.reverse()) {
      const path = join(this.tree, dir.path);
      if (this.#old.get(dir.path)?.mode !== dir.mode) await chmod(path, dir.mode);
      lutimesNs(path, BigInt(dir.mtimeNs), BigInt(dir.mtimeNs));
    }
    const temp = join(this.#dir, `.${MANIFEST}.${randomBytes(6).toString("hex")}`);
    await writeFile(temp, JSON.stringify(manifest));
    await rename(temp, join(this.#dir, MANIFEST));
    return { files: this.#received.size, bytes: this.#bytes, deleted: this.#deleted };
  }

  /** Drops a half-received file (the connection went away). */
  async abandon(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current === undefined) return;
    await current.handle.close().catch(() => {});
    await unlink(current.temp).catch(() => {});
  }

  async #closeFile(): Promise<void> {
    const current = this.#current;
    if (current === undefined) return;
    this.#current = undefined;
    await current.handle.close();
    const path = join(this.tree, current.path);
    // Replaces the old content in one step; a directory in the way went in plan().
    await rename(current.temp, path);
    this.#received.set(current.path, current.bytes);
  }
}

/**
 * Checks a listing before anything is written: every path is relative, slash-separated and clean
 * (no "", ".", ".." segment, no leading "/", no NUL), listed once, and below SYNC_CONTEXT or
 * SYNC_DOCKERFILE, which must be listed as directories; every entry's parent is listed before it
 * as a directory, so no entry can be reached through a symlink. Throws SyncEscapeError.
 */
export function validateListing(entries: readonly SyncEntry[]): void {
  const kinds = new Map<string, SyncEntry["kind"]>();
  for (const entry of entries) {
    const { path } = entry;
    if (typeof path !== "string" || path === "" || path.startsWith("/") || path.includes("\0")) throw new SyncEscapeError(String(path), "is not a relative path");
    const segments = path.split("/");
    if (segments.some((s) => s === "" || s === "." || s === "..")) throw new SyncEscapeError(path, 'has an empty, "." or ".." segment: it could point outside the context');
    if (kinds.has(path)) throw new SyncEscapeError(path, "is listed twice");
    if (entry.kind !== "file" && entry.kind !== "dir" && entry.kind !== "symlink") throw new SyncEscapeError(path, `has an unknown type "${String(entry.kind)}"`);
    if (!/^\d+$/.test(entry.mtimeNs) || !Number.isInteger(entry.mode) || !Number.isSafeInteger(entry.size)) throw new SyncEscapeError(path, "has a malformed mode, size or mtime");
    if (segments.length === 1) {
      if ((path !== SYNC_CONTEXT && path !== SYNC_DOCKERFILE) || entry.kind !== "dir") {
        throw new SyncEscapeError(path, `is not below "${SYNC_CONTEXT}/" or "${SYNC_DOCKERFILE}/"`);
      }
    } else {
      const parent = segments.slice(0, -1).join("/");
      const parentKind = kinds.get(parent);
      if (parentKind === "symlink") throw new SyncEscapeError(path, `is below the symlink "${parent}": it would be written through it`);
      if (parentKind !== "dir") throw new SyncEscapeError(path, `comes before its directory "${parent}" in the listing, or has none`);
    }
    if (entry.kind === "symlink" && typeof entry.target !== "string") throw new SyncEscapeError(path, "is a symlink without a target");
    kinds.set(path, entry.kind);
  }
}

/** Whether what is on disk for `old` can stay as the base of `next` (same type, same link target). */
function sameShape(old: SyncEntry, next: SyncEntry | undefined): boolean {
  if (next === undefined || next.kind !== old.kind) return false;
  return next.kind !== "symlink" || next.target === old.target;
}

function depth(path: string): number {
  let n = 0;
  for (const ch of path) if (ch === "/") n++;
  return n;
}
