import { chmod, mkdir, stat, unlink } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { basename, dirname, join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { KilnError } from "../../solver/llb/index.js";
import { EntitlementError, parseEntitlement, type Entitlement } from "../../worker/ops/entitlements.js";
import type { Engine } from "../api.js";
import { renderError } from "../render/error.js";
import { runHostedCommand } from "./command-host.js";
import { ContextSync, type SyncStats } from "./context-sync.js";
import { IdleGc } from "./idle-gc.js";
import { encodeDataChunks, encodeMessage, readFrames, REMOTE_COMMANDS, socketPath, SYNC_CONTEXT, SYNC_DOCKERFILE, writeFrame, type Frame, type Message } from "./protocol.js";
import { SyncDirs } from "./sync-dirs.js";

/** A listening daemon. */
export interface Daemon {
  readonly path: string;
  /** Builds and commands running now. */
  readonly active: () => number;
  /** Stops listening, cancels running builds and removes the socket. */
  close(): Promise<void>;
}

/** How a daemon serves. */
export interface ServeOptions {
  /** Lines for the daemon's log (builds started, synced, done, failed). */
  readonly log?: (line: string) => void;
  /** How many context copies (sync keys) the daemon keeps for incremental uploads; default 16. */
  readonly maxSyncDirs?: number;
  /**
   * The entitlements a client may ask for with `--allow` (`kiln serve --allow-insecure-entitlement`,
   * BuildKit's buildkitd flag); default none: a build asking for another is refused before its
   * context is sent.
   */
  readonly allowedEntitlements?: readonly Entitlement[];
}

type FrameStream = AsyncGenerator<Frame>;
type BuildMessage = Extract<Message, { type: "build" }>;

/**
 * Serves builds and commands on a unix socket at `addr` with one shared engine, so concurrent
 * clients share its cache. The socket's directory is made 0700 and the socket 0600: only its
 * owner (root, or the rootless user) can build. A client that disconnects before its result has
 * its build cancelled (its containers killed). Each build's context is synced into a copy kept
 * per sync key under `<root>/daemon/sync` (see ContextSync and SyncDirs), so a rebuild moves only
 * what changed; the result's metadata says what moved (`kiln.daemon.sync.files`,
 * `kiln.daemon.sync.bytes`).
 */
export async function serve(engine: Engine, addr: string, options: ServeOptions = {}): Promise<Daemon> {
  const log = options.log ?? (() => {});
  const path = socketPath(addr);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await removeStaleSocket(path);
  const syncDirs = new SyncDirs(join(engine.root, "daemon", "sync"), options.maxSyncDirs ?? 16);
  await syncDirs.init();
  const running = new Set<AbortController>();
  const idleGc = new IdleGc();
  const server: Server = createServer((socket) => {
    const controller = new AbortController();
    running.add(controller);
    idleGc.cancel();
    void handle({ engine, syncDirs, log, allowedEntitlements: options.allowedEntitlements ?? [] }, socket, controller).finally(() => {
      running.delete(controller);
      if (running.size === 0) idleGc.schedule();
    });
  });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolvePromise, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolvePromise());
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(path, 0o600);
  return {
    path,
    active: () => running.size,
    close: async () => {
      idleGc.cancel();
      for (const c of running) c.abort(new KilnError("KILN_DAEMON_STOPPED", "Build cancelled: the kiln daemon is stopping"));
      await new Promise<void>((r) => server.close(() => r()));
      await unlink(path).catch(() => {});
    },
  };
}

interface Host {
  readonly engine: Engine;
  readonly syncDirs: SyncDirs;
  readonly log: (line: string) => void;
  readonly allowedEntitlements: readonly Entitlement[];
}

async function handle(host: Host, socket: Socket, controller: AbortController): Promise<void> {
  const send = async (message: Message): Promise<void> => {
    if (!socket.destroyed) await writeFrame(socket, encodeMessage(message)).catch(() => {});
  };
  // A client that goes away takes its build with it.
  socket.on("close", () => controller.abort(new KilnError("KILN_CLIENT_GONE", "Build cancelled: the client disconnected")));
  socket.on("error", () => {});
  const frames = readFrames(socket);
  try {
    const first = await frames.next();
    if (first.done === true) return;
    const message = first.value.kind === "message" ? first.value.message : undefined;
    if (message?.type === "build") await handleBuild(host, socket, frames, message, controller.signal, send);
    else if (message?.type === "command") await handleCommand(host, frames, message, controller.signal, send);
    else throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot start with a ${message === undefined ? "data frame" : `"${message.type}" message`}: expected "build" or "command"`);
  } catch (error) {
    // What the client still sends (a refused build's context) is read and dropped: a socket with
    // unread data never closes, and the daemon's close would wait for it forever.
    void (async () => {
      for await (const _ of frames);
    })().catch(() => {});
    await send({ type: "error", code: codeOf(error), message: error instanceof Error ? error.message : String(error), rendered: renderError(error) });
  } finally {
    socket.end();
  }
}

async function handleBuild(host: Host, socket: Socket, frames: FrameStream, request: BuildMessage, signal: AbortSignal, send: (m: Message) => Promise<void>): Promise<void> {
  checkDaemonEntitlements(request.options.allow ?? [], host.allowedEntitlements);
  const lease = await host.syncDirs.acquire(String(request.sync?.key));
  const sync = await ContextSync.open(lease.dir);
  try {
    const stats = await receiveContext(sync, frames, send);
    if (stats === undefined) return;
    host.log(`build ${request.id} synced ${stats.files} files (${stats.bytes} bytes), removed ${stats.deleted}${lease.kept ? "" : " (its sync key was busy: a throwaway copy)"}`);
    // Keep reading while the build runs, so a client that goes away is noticed at once.
    void (async () => {
      for await (const _ of frames);
    })().catch(() => {});
    const options = {
      ...request.options,
      context: join(sync.tree, SYNC_CONTEXT),
      file: join(sync.tree, SYNC_DOCKERFILE, basename(request.options.file ?? "Dockerfile")),
    };
    host.log(`build ${request.id} started`);
    const handle = host.engine.build(options, signal, request.id, { stdout: clientStdout(socket) });
    const forwarding = (async () => {
      for await (const event of handle.events) await send({ type: "event", event });
    })();
    try {
      const result = await handle.result;
      await forwarding;
      const metadata = { ...result.metadata, "kiln.daemon.sync.files": String(stats.files), "kiln.daemon.sync.bytes": String(stats.bytes) };
      await send({ type: "result", result: { ...result, metadata } });
      host.log(`build ${request.id} done`);
    } catch (error) {
      await forwarding;
      host.log(`build ${request.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    }
  } finally {
    await sync.abandon();
    await lease.release();
  }
}

/** Runs the sync conversation up to sync.end; undefined when the client went away first. */
async function receiveContext(sync: ContextSync, frames: FrameStream, send: (m: Message) => Promise<void>): Promise<SyncStats | undefined> {
  for (;;) {
    const next = await frames.next();
    if (next.done === true) return undefined;
    const frame = next.value;
    if (frame.kind === "data") {
      await sync.write(frame.bytes);
      continue;
    }
    const message = frame.message;
    switch (message.type) {
      case "sync.entries":
        sync.add(message.entries);
        break;
      case "sync.listed": {
        const wanted = await sync.plan();
        const chunk = 4096;
        for (let at = 0; at < wanted.length || at === 0; at += chunk) {
          await send({ type: "sync.want", paths: wanted.slice(at, at + chunk), last: at + chunk >= wanted.length });
        }
        break;
      }
      case "sync.file":
        await sync.beginFile(message.path);
        break;
      case "sync.end":
        return await sync.finish();
      default:
        throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot accept a "${message.type}" message while syncing the context`);
    }
  }
}

/**
 * As buildkitd: a client's `--allow` is honoured only for entitlements the daemon was started
 * with, since whoever reaches the socket would otherwise get a privileged RUN by asking.
 */
function checkDaemonEntitlements(requested: readonly string[], allowed: readonly Entitlement[]): void {
  for (const name of requested) {
    const entitlement = parseEntitlement(name);
    if (!allowed.includes(entitlement)) {
      throw new EntitlementError(`Cannot grant entitlement "${entitlement}": the kiln daemon does not allow it (start it with "kiln serve --allow-insecure-entitlement ${entitlement}")`);
    }
  }
}

async function handleCommand(host: Host, frames: FrameStream, request: Extract<Message, { type: "command" }>, signal: AbortSignal, send: (m: Message) => Promise<void>): Promise<void> {
  if (!REMOTE_COMMANDS.includes(request.name)) {
    throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot run "${String(request.name)}" on the daemon: it runs ${REMOTE_COMMANDS.map((c) => `"${c}"`).join(", ")}`);
  }
  const input = new PassThrough();
  let done = false;
  const feeding = (async () => {
    for (;;) {
      const next = await frames.next();
      if (next.done === true) break;
      const frame = next.value;
      if (frame.kind === "data") {
        if (!input.write(frame.bytes) && !done) await new Promise((r) => input.once("drain", r));
      } else if (frame.message.type === "upload.end") {
        input.end();
        break;
      } else throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot accept a "${frame.message.type}" message while a command runs`);
    }
    // Keep reading, so a client that goes away is noticed (and its input ends).
    if (!input.writableEnded) input.end();
    for await (const _ of frames);
  })().catch((error: unknown) => input.destroy(error instanceof Error ? error : new Error(String(error))));
  host.log(`command ${request.name} started`);
  try {
    const code = await runHostedCommand(host.engine, request.name, request.argv, {
      input,
      signal,
      output: (stream, text) => void send({ type: "output", stream, text }),
    });
    await send({ type: "exit", code });
    host.log(`command ${request.name} exited ${code}`);
  } finally {
    done = true;
    input.resume();
    void feeding;
  }
}

/** A stream whose bytes go to the client as data frames: its standard output. */
function clientStdout(socket: Socket): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      void (async () => {
        for (const frame of encodeDataChunks(chunk)) await writeFrame(socket, frame);
      })().then(() => callback(), callback);
    },
  });
}

function codeOf(error: unknown): string {
  return error instanceof KilnError ? error.code : "KILN_INTERNAL";
}

/** A socket file nobody listens on (a daemon that died) is removed; a live one is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    return;
  }
  const alive = await new Promise<boolean>((resolvePromise) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolvePromise(true);
    });
    probe.once("error", () => resolvePromise(false));
  });
  if (alive) throw new KilnError("KILN_DAEMON_RUNNING", `Cannot listen on "${path}": a kiln daemon already serves it`);
  await unlink(path);
}
