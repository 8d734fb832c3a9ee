import { chmod, mkdir, mkdtemp, rm, stat, unlink } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { basename, dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { KilnError } from "../../solver/llb/index.js";
import type { Engine } from "../api.js";
import { extractContextArchive } from "../context-archive.js";
import { renderError } from "../render/error.js";
import { encodeMessage, readFrames, socketPath, UPLOAD_CONTEXT, UPLOAD_DOCKERFILE, type Message } from "./protocol.js";

/** A listening daemon. */
export interface Daemon {
  readonly path: string;
  /** Builds running now. */
  readonly active: () => number;
  /** Stops listening, cancels running builds and removes the socket. */
  close(): Promise<void>;
}

/**
 * Serves builds on a unix socket at `addr` with one shared engine, so concurrent clients share
 * its cache. The socket's directory is made 0700 and the socket 0600: only its owner (root, or
 * the rootless user) can build. A client that disconnects before its result has its build
 * cancelled (its containers killed); each upload lives in a session directory under the state
 * root and is removed when the build ends.
 */
export async function serve(engine: Engine, addr: string, log: (line: string) => void = () => {}): Promise<Daemon> {
  const path = socketPath(addr);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await removeStaleSocket(path);
  const sessions = join(engine.root, "daemon", "sessions");
  await mkdir(sessions, { recursive: true, mode: 0o700 });
  const running = new Set<AbortController>();
  const server: Server = createServer((socket) => {
    const controller = new AbortController();
    running.add(controller);
    void handle(engine, socket, sessions, controller, log).finally(() => running.delete(controller));
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
      for (const c of running) c.abort(new KilnError("KILN_DAEMON_STOPPED", "Build cancelled: the kiln daemon is stopping"));
      await new Promise<void>((r) => server.close(() => r()));
      await unlink(path).catch(() => {});
    },
  };
}

async function handle(engine: Engine, socket: Socket, sessions: string, controller: AbortController, log: (line: string) => void): Promise<void> {
  const send = (message: Message): void => {
    if (!socket.destroyed) socket.write(encodeMessage(message));
  };
  // A client that goes away takes its build with it.
  socket.on("close", () => controller.abort(new KilnError("KILN_CLIENT_GONE", "Build cancelled: the client disconnected")));
  socket.on("error", () => {});
  const session = await mkdtemp(join(sessions, "s-"));
  let upload: PassThrough | undefined;
  let extracting: Promise<void> | undefined;
  try {
    let request: Extract<Message, { type: "build" }> | undefined;
    const frames = readFrames(socket);
    for (;;) {
      const next = await frames.next();
      if (next.done === true) return;
      const frame = next.value;
      if (frame.kind === "data") {
        if (upload === undefined) throw new KilnError("KILN_DAEMON_PROTOCOL", "Cannot accept context data before the build request");
        if (!upload.write(frame.bytes)) await new Promise((r) => upload!.once("drain", r));
        continue;
      }
      const message = frame.message;
      if (message.type === "build") {
        request = message;
        upload = new PassThrough();
        extracting = extractContextArchive(upload, session, controller.signal);
      } else if (message.type === "upload.end") {
        if (request === undefined || upload === undefined || extracting === undefined) throw new KilnError("KILN_DAEMON_PROTOCOL", "Cannot end an upload that did not start");
        upload.end();
        await extracting;
        break;
      }
    }
    // Keep reading while the build runs, so a client that goes away is noticed at once.
    void (async () => {
      for await (const _ of frames);
    })().catch(() => {});
    await runBuild(engine, request, session, controller.signal, send, log);
  } catch (error) {
    send({ type: "error", code: codeOf(error), message: error instanceof Error ? error.message : String(error), rendered: renderError(error) });
  } finally {
    upload?.destroy();
    await extracting?.catch(() => {});
    socket.end();
    await rm(session, { recursive: true, force: true });
  }
}

async function runBuild(
  engine: Engine,
  request: Extract<Message, { type: "build" }>,
  session: string,
  signal: AbortSignal,
  send: (message: Message) => void,
  log: (line: string) => void,
): Promise<void> {
  const options = {
    ...request.options,
    context: join(session, UPLOAD_CONTEXT),
    file: join(session, UPLOAD_DOCKERFILE, basename(request.options.file ?? "Dockerfile")),
  };
  log(`build ${request.id} started`);
  const handle = engine.build(options, signal, request.id);
  const forwarding = (async () => {
    for await (const event of handle.events) send({ type: "event", event });
  })();
  try {
    const result = await handle.result;
    await forwarding;
    send({ type: "result", result });
    log(`build ${request.id} done`);
  } catch (error) {
    await forwarding;
    log(`build ${request.id} failed: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
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
