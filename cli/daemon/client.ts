import { once } from "node:events";
import { open } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { basename, join, resolve } from "node:path";
import type { Writable } from "node:stream";
import type { ProgressEvent } from "../../solver/index.js";
import { KilnError } from "../../solver/llb/index.js";
import { buildHandle, type BuildResult, type BuildService } from "../api.js";
import { newBuildId } from "../build-logs.js";
import { EventChannel } from "../event-channel.js";
import type { BuildOptions } from "../options/build-request.js";
import { listContext, syncKey, type ContextListing } from "./context-listing.js";
import { encodeData, encodeMessage, readFrames, RemoteBuildError, socketPath, SYNC_CONTEXT, SYNC_DOCKERFILE, writeFrame } from "./protocol.js";

/** Listing entries per sync.entries message. */
const ENTRIES_PER_MESSAGE = 2000;

/**
 * A BuildService that sends builds to a kiln daemon (`kiln serve`) at `addr`. Each build is one
 * connection: the options, then an incremental sync of the context (only what .dockerignore lets
 * the Dockerfile reach is listed, and only the files the daemon's kept copy lacks travel), then
 * progress events stream back, and standard output (`-o -`) arrives as data and is written to the
 * build's `io.stdout` (default: this process's). Aborting the signal closes the connection, which
 * cancels the build on the daemon. Other output paths (`dest=`) are written by the daemon, so
 * they must be reachable from it (the same machine, as a unix socket implies).
 */
export async function connectDaemon(addr: string): Promise<BuildService> {
  // Fail early, before any listing, when nothing listens there.
  (await dialDaemon(addr)).end();
  return {
    build: (options, signal, id, io) => remoteBuild(addr, options, signal, id ?? newBuildId(), io?.stdout ?? process.stdout),
    close: async () => {},
  };
}

/** Opens a connection to the daemon at `addr`; KILN_DAEMON_UNREACHABLE when nothing listens there. */
export async function dialDaemon(addr: string): Promise<Socket> {
  const socket = connect(socketPath(addr));
  try {
    await new Promise<void>((resolvePromise, reject) => socket.once("connect", resolvePromise).once("error", reject));
  } catch (error) {
    socket.destroy();
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new KilnError("KILN_DAEMON_UNREACHABLE", `Cannot reach the kiln daemon at "${addr}": ${why}; start one with "kiln serve --addr ${addr}"`, { cause: error });
  }
  return socket;
}

function remoteBuild(addr: string, options: BuildOptions, signal: AbortSignal | undefined, id: string, stdout: Writable) {
  const events = new EventChannel<ProgressEvent>();
  const result = (async (): Promise<BuildResult> => {
    signal?.throwIfAborted();
    const socket = await dialDaemon(addr);
    const onAbort = (): void => void socket.destroy();
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.on("error", () => {});
    try {
      const listing = await offerContext(socket, id, options, signal);
      const wanted: string[] = [];
      for await (const frame of readFrames(socket)) {
        if (frame.kind === "data") {
          if (!stdout.write(frame.bytes)) await once(stdout, "drain");
          continue;
        }
        const message = frame.message;
        switch (message.type) {
          case "sync.want":
            wanted.push(...message.paths);
            if (message.last) await sendFiles(socket, listing, wanted, signal);
            break;
          case "event":
            events.push(message.event);
            break;
          case "result":
            socket.end();
            return message.result;
          case "error":
            socket.end();
            throw new RemoteBuildError(message.code, message.message, message.rendered);
          default:
            throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot handle a "${message.type}" message from the daemon during a build`);
        }
      }
      signal?.throwIfAborted();
      throw new KilnError("KILN_DAEMON_DISCONNECTED", "Cannot finish the build: the kiln daemon closed the connection");
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
    }
  })();
  result.then(
    () => events.close(),
    () => events.close(),
  );
  return buildHandle(id, result, events);
}

/** Sends the build request and the listing of its context; returns the listing, to serve what the daemon asks for. */
async function offerContext(socket: Socket, id: string, options: BuildOptions, signal: AbortSignal | undefined): Promise<ContextListing> {
  const contextDir = resolve(options.context);
  const dockerfile = options.file === undefined ? join(contextDir, "Dockerfile") : resolve(options.file);
  const remote: BuildOptions = {
    ...options,
    context: SYNC_CONTEXT,
    file: `${SYNC_DOCKERFILE}/${basename(dockerfile)}`,
    // Output paths are the client's: make them absolute before they travel ("-" stays the client's stdout).
    outputs: (options.outputs ?? []).map(absoluteDest),
  };
  await writeFrame(socket, encodeMessage({ type: "build", id, options: remote, sync: { key: syncKey(contextDir, dockerfile) } }));
  const listing = await listContext(contextDir, dockerfile, signal);
  for (let at = 0; at < listing.entries.length; at += ENTRIES_PER_MESSAGE) {
    await writeFrame(socket, encodeMessage({ type: "sync.entries", entries: listing.entries.slice(at, at + ENTRIES_PER_MESSAGE) }));
  }
  await writeFrame(socket, encodeMessage({ type: "sync.listed" }));
  return listing;
}

/** Sends the content of each wanted file; one that can no longer be opened is left out (the daemon drops it). */
async function sendFiles(socket: Socket, listing: ContextListing, wanted: readonly string[], signal: AbortSignal | undefined): Promise<void> {
  const buffer = Buffer.alloc(1 << 20);
  for (const path of wanted) {
    signal?.throwIfAborted();
    const file = listing.files.get(path);
    if (file === undefined) throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot send "${path}": the daemon asked for a file that was not listed`);
    const handle = await open(file, "r").catch(() => undefined);
    if (handle === undefined) continue;
    try {
      await writeFrame(socket, encodeMessage({ type: "sync.file", path }));
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        await writeFrame(socket, encodeData(Buffer.from(buffer.subarray(0, bytesRead))));
      }
    } finally {
      await handle.close();
    }
  }
  await writeFrame(socket, encodeMessage({ type: "sync.end" }));
}

/** `dest=PATH` (and a bare `-o DIR`) made absolute on the client; `-` is left alone: it means the client's stdout. */
function absoluteDest(output: string): string {
  if (!output.includes("=")) return output === "-" ? output : resolve(output);
  return output.replace(/(^|,)(dest=)([^,]+)/g, (_m, sep: string, key: string, value: string) => `${sep}${key}${value === "-" ? value : resolve(value)}`);
}
