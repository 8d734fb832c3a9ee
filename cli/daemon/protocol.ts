import type { Socket } from "node:net";
import type { ProgressEvent } from "../../solver/index.js";
import { KilnError } from "../../solver/llb/index.js";
import type { BuildResult } from "../api.js";
import type { BuildOptions } from "../options/build-request.js";

/**
 * kiln's daemon protocol, over a unix socket: frames of one type byte, a 4-byte big-endian
 * length and the payload. A `message` frame holds one JSON Message; a `data` frame holds bytes
 * whose meaning the last message set (a synced file's content, a command's input, a build's
 * standard output). One connection carries one build or one command.
 *
 * A build, with its context synced incrementally (BuildKit's fsutil "diffcopy" with a shared
 * key): the client lists what the Dockerfile can reach after .dockerignore (SyncEntry: path,
 * type, mode, owner, size, mtime, link target); the daemon compares the listing with the copy it
 * kept for the sync key and asks for exactly the regular files that are new or whose type, size
 * or mtime differ; it then deletes what is no longer listed, applies modes, times and link
 * targets, and builds from that copy:
 *
 *   client ─ build ─ sync.entries… ─ sync.listed ─────────────────────────▶ server
 *   client ◀─ sync.want… (the last with `last: true`) ───────────────────── server
 *   client ─ (sync.file ─ data…)… ─ sync.end ─────────────────────────────▶ server
 *   client ◀─ event… ─ data… (standard output: `-o -`) ─ result | error ─── server
 *
 * A command (`kiln --addr ADDR images|rmi|du|prune|import|load|logs`), run by the daemon against its
 * own state root, its input (the archive or root filesystem of import and load) streamed:
 *
 *   client ─ command ─ data… ─ upload.end ─────────────────────────────────▶ server
 *   client ◀─ output… ─ exit | error ────────────────────────────────────── server
 *
 * Closing the connection before the result cancels the build.
 */
export type Message =
  | {
      readonly type: "build";
      /** The build id (its logs on the daemon are `kiln logs ID`). */
      readonly id: string;
      /** The options, with `context` and `file` relative to the synced tree (see SYNC_*). */
      readonly options: BuildOptions;
      /**
       * Names the daemon's kept copy of this context (see syncKey): the same key on the next
       * build means only changes travel.
       */
      readonly sync: { readonly key: string };
    }
  /** Part of the listing, in order: every entry's parent directory comes before it. */
  | { readonly type: "sync.entries"; readonly entries: readonly SyncEntry[] }
  /** The listing is complete. */
  | { readonly type: "sync.listed" }
  /** The regular files (listing paths) the daemon needs the content of; `last` ends the list. */
  | { readonly type: "sync.want"; readonly paths: readonly string[]; readonly last: boolean }
  /** The data frames that follow, up to the next message, are the content of `path` (a wanted file). */
  | { readonly type: "sync.file"; readonly path: string }
  /** Every wanted file was sent. */
  | { readonly type: "sync.end" }
  | { readonly type: "command"; readonly name: RemoteCommand; readonly argv: readonly string[] }
  /** The end of a command's input (data frames before it). */
  | { readonly type: "upload.end" }
  | { readonly type: "output"; readonly stream: "stdout" | "stderr"; readonly text: string }
  | { readonly type: "exit"; readonly code: number }
  | { readonly type: "event"; readonly event: ProgressEvent }
  | { readonly type: "result"; readonly result: BuildResult }
  | { readonly type: "error"; readonly code: string; readonly message: string; readonly rendered: string };

/** The commands a daemon runs for a client against its own state root. */
export type RemoteCommand = "images" | "rmi" | "du" | "prune" | "import" | "load" | "logs";
export const REMOTE_COMMANDS: readonly RemoteCommand[] = ["images", "rmi", "du", "prune", "import", "load", "logs"];

/**
 * One entry of a sync listing. `path` is slash-separated, relative, below SYNC_CONTEXT or
 * SYNC_DOCKERFILE (which are listed themselves, first); `mode` holds the permission bits;
 * `mtimeNs` is decimal nanoseconds (JSON has no 64-bit integers). `uid`/`gid` are the client's
 * and informational: a local source resets owners to 0:0, as BuildKit's file transfer does.
 */
export interface SyncEntry {
  readonly path: string;
  readonly kind: "file" | "dir" | "symlink";
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of a regular file; 0 otherwise. */
  readonly size: number;
  readonly mtimeNs: string;
  /** A symlink's target, as readlink gives it. */
  readonly target?: string;
}

/** In the synced tree: the context below this directory… */
export const SYNC_CONTEXT = "context";
/** …and the Dockerfile (and its own `.dockerignore`) below this one. */
export const SYNC_DOCKERFILE = "dockerfile";

const MESSAGE = 1;
const DATA = 2;
/** A frame larger than this is refused: it is not from a kiln client. */
const MAX_FRAME = 64 << 20;
const DATA_CHUNK = 1 << 20;

export function encodeMessage(message: Message): Buffer {
  return frame(MESSAGE, Buffer.from(JSON.stringify(message)));
}

export function encodeData(bytes: Buffer): Buffer {
  return frame(DATA, bytes);
}

/** Bytes as data frames of at most 1 MiB each. */
export function encodeDataChunks(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += DATA_CHUNK) frames.push(encodeData(bytes.subarray(at, at + DATA_CHUNK)));
  return frames;
}

/**
 * Writes encoded frames to `socket`, resolving when it can take more (backpressure), and
 * rejecting when it is closed.
 */
export function writeFrame(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (socket.destroyed || socket.writableEnded) {
      reject(new KilnError("KILN_DAEMON_DISCONNECTED", "Cannot write to the kiln daemon connection: it is closed"));
      return;
    }
    if (socket.write(bytes)) resolvePromise();
    else {
      const onDrain = (): void => {
        socket.off("close", onClose);
        resolvePromise();
      };
      const onClose = (): void => {
        socket.off("drain", onDrain);
        reject(new KilnError("KILN_DAEMON_DISCONNECTED", "Cannot write to the kiln daemon connection: it closed"));
      };
      socket.once("drain", onDrain).once("close", onClose);
    }
  });
}

function frame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** One frame read from a connection. */
export type Frame = { readonly kind: "message"; readonly message: Message } | { readonly kind: "data"; readonly bytes: Buffer };

/**
 * Reads frames from `socket` until it ends; a malformed frame throws KILN_DAEMON_PROTOCOL.
 * Leaving the iteration early does not destroy the socket: replies can still be written.
 */
export async function* readFrames(socket: Socket): AsyncGenerator<Frame> {
  let buffer: Buffer = Buffer.alloc(0);
  for await (const chunk of socket.iterator({ destroyOnReturn: false })) {
    buffer = buffer.length === 0 ? (chunk as Buffer) : Buffer.concat([buffer, chunk as Buffer]);
    while (buffer.length >= 5) {
      const type = buffer.readUInt8(0);
      const length = buffer.readUInt32BE(1);
      if (length > MAX_FRAME) throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot read a daemon frame of ${length} bytes: the limit is ${MAX_FRAME}`);
      if (buffer.length < 5 + length) break;
      const payload = buffer.subarray(5, 5 + length);
      buffer = buffer.subarray(5 + length);
      if (type === MESSAGE) yield { kind: "message", message: JSON.parse(payload.toString("utf8")) as Message };
      else if (type === DATA) yield { kind: "data", bytes: Buffer.from(payload) };
      else throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot read a daemon frame of type ${type}: expected 1 (message) or 2 (data)`);
    }
  }
}

/** `unix:///run/kiln/kiln.sock` or a bare path → the socket path. */
export function socketPath(addr: string): string {
  if (addr.startsWith("unix://")) return addr.slice("unix://".length);
  if (addr.startsWith("/") || addr.startsWith(".")) return addr;
  throw new KilnError("KILN_USAGE", `Cannot use address "${addr}": kiln listens on unix sockets only (unix:///path/kiln.sock)`);
}

/** The daemon's default address: /run/kiln/kiln.sock for root, $XDG_RUNTIME_DIR/kiln/kiln.sock otherwise. */
export function defaultAddress(): string {
  if (process.getuid?.() === 0) return "unix:///run/kiln/kiln.sock";
  const runtime = process.env["XDG_RUNTIME_DIR"];
  const dir = runtime !== undefined && runtime !== "" ? runtime : `/tmp/kiln-${process.getuid?.() ?? "user"}`;
  return `unix://${dir}/kiln/kiln.sock`;
}

/** A build that failed on the daemon: its code and message, and the daemon's rendering of it (code frames included). */
export class RemoteBuildError extends KilnError {
  readonly rendered: string;

  constructor(code: string, message: string, rendered: string) {
    super(code, message);
    this.rendered = rendered;
  }
}
