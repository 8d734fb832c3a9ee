import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { withMountedSnapshot } from "../worker/snapshotter/mount.js";
import type { SnapshotMount } from "../worker/snapshotter/types.js";
import { packDirectory, packTrees } from "./rootfs-tar.js";

export interface TarOutputOptions {
  /** A file path (replaced atomically), or a stream (e.g. stdout for `-o -`) that is left open. */
  readonly dest: string | Writable;
  readonly signal?: AbortSignal;
}

/**
 * Writes a build result's final filesystem as one tar, as BuildKit's `type=tar` exporter does:
 * `view` is the result snapshot's read-only view (null: an empty tar). Entries are relative
 * names in byte order with numeric owners, modes, symlinks, hard links, devices and fifos
 * (see packDirectory); the same filesystem always gives the same bytes.
 */
export async function writeTarOutput(view: SnapshotMount | null, options: TarOutputOptions): Promise<void> {
  const signalOption = options.signal === undefined ? {} : { signal: options.signal };
  const write = async (root: string | null, out: Writable, end: boolean): Promise<void> => {
    const source = root === null ? emptyTar() : packDirectory(root, signalOption);
    await pipeline(source, out, { ...signalOption, end });
  };
  const withRoot = (fn: (root: string | null) => Promise<void>): Promise<void> => (view === null ? fn(null) : withMountedSnapshot(view, fn));
  if (typeof options.dest !== "string") {
    const out = options.dest;
    await withRoot((root) => write(root, out, false));
    return;
  }
  const dest = options.dest;
  await mkdir(dirname(dest), { recursive: true });
  const temp = `${dest}.kiln-${randomBytes(6).toString("hex")}`;
  try {
    await withRoot((root) => write(root, createWriteStream(temp), true));
    await rename(temp, dest);
  } finally {
    await rm(temp, { force: true });
  }
}

/** One platform's result for a multi-platform tar: its view and the directory it goes under (`linux_amd64`). */
export interface PrefixedView {
  readonly prefix: string;
  readonly view: SnapshotMount | null;
}

/**
 * A multi-platform result's filesystems as one tar, each under its platform's directory, as
 * BuildKit's tar exporter writes them (`linux_amd64/…`, `linux_arm64/…`). Same entry rules as
 * writeTarOutput.
 */
export async function writeTarOutputs(views: readonly PrefixedView[], options: TarOutputOptions): Promise<void> {
  const signalOption = options.signal === undefined ? {} : { signal: options.signal };
  const roots: { root: string | null; prefix: string }[] = [];
  // Mount every view (nested, so all are mounted while the tar is written), then pack them together.
  const withAll = async (i: number, fn: () => Promise<void>): Promise<void> => {
    const part = views[i];
    if (part === undefined) return fn();
    if (part.view === null) {
      roots.push({ root: null, prefix: part.prefix });
      return withAll(i + 1, fn);
    }
    return withMountedSnapshot(part.view, (root) => {
      roots.push({ root, prefix: part.prefix });
      return withAll(i + 1, fn);
    });
  };
  if (typeof options.dest !== "string") {
    const out = options.dest;
    await withAll(0, () => pipeline(packTrees(roots, signalOption), out, { ...signalOption, end: false }));
    return;
  }
  const dest = options.dest;
  await mkdir(dirname(dest), { recursive: true });
  const temp = `${dest}.kiln-${randomBytes(6).toString("hex")}`;
  try {
    await withAll(0, () => pipeline(packTrees(roots, signalOption), createWriteStream(temp), signalOption));
    await rename(temp, dest);
  } finally {
    await rm(temp, { force: true });
  }
}

/** The end-of-archive marker alone: two zero blocks. */
function emptyTar(): AsyncIterable<Buffer> {
  return (async function* () {
    yield Buffer.alloc(1024);
  })();
}
