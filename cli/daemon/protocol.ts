import type { Socket } from "node:net";
import type { ProgressEvent } from "../../solver/index.js";
import { KilnError } from "../../solver/llb/index.js";
import type { BuildResult } from "../api.js";
import type { BuildOptions } from "../options/build-request.js";

/**
 * kiln's daemon protocol, over a unix socket: frames of one type byte, a 4-byte big-endian
 * length and the payload. A `message` frame holds one JSON Message; a `data` frame holds bytes of
 * the context upload (a tar, see packContextArchive). One connection carries one build:
 *
 *   client ─ build ─ data… ─ upload.end ─▶ server
 *   client ◀─ event… ─ result | error ─ server
 *
 * Closing the connection before the result cancels the build.
 */
export type Message =
  | {
      readonly type: "build";
      /** The build id (its logs on the daemon are `kiln logs ID`). */
      readonly id: string;
      /** The options, with `context` and `file` relative to the uploaded tree (see UPLOAD_*). */
      readonly options: BuildOptions;
    }
  | { readonly type: "upload.end" }
  | { readonly type: "event"; readonly event: ProgressEvent }
  | { readonly type: "result"; readonly result: BuildResult }
  | { readonly type: "error"; readonly code: string; readonly message: string; readonly rendered: string };

/** In the uploaded tar: the context below this directory… */
export const UPLOAD_CONTEXT = "context";
/** …and the Dockerfile (and its own `.dockerignore`) below this one. */
export const UPLOAD_DOCKERFILE = "dockerfile";

const MESSAGE = 1;
const DATA = 2;
/** A frame larger than this is refused: it is not from a kiln client. */
const MAX_FRAME = 64 << 20;

export function encodeMessage(message: Message): Buffer {
  return frame(MESSAGE, Buffer.from(JSON.stringify(message)));
}

export function encodeData(bytes: Buffer): Buffer {
  return frame(DATA, bytes);
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
