import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { basename, join, resolve } from "node:path";
import { createSourceFile, dockerignoreMatcher, parseDockerignore } from "../../frontend/index.js";
import type { ProgressEvent } from "../../solver/index.js";
import { KilnError } from "../../solver/llb/index.js";
import { buildHandle, type BuildResult, type BuildService } from "../api.js";
import { newBuildId } from "../build-logs.js";
import { packContextArchive } from "../context-archive.js";
import { EventChannel } from "../event-channel.js";
import type { BuildOptions } from "../options/build-request.js";
import { encodeData, encodeMessage, readFrames, RemoteBuildError, socketPath, UPLOAD_CONTEXT, UPLOAD_DOCKERFILE } from "./protocol.js";

/**
 * A BuildService that sends builds to a kiln daemon (`kiln serve`) at `addr`. Each build is one
 * connection: the options, then the context as a tar holding only what .dockerignore lets the
 * Dockerfile reach, then progress events stream back. Aborting the signal closes the connection,
 * which cancels the build on the daemon. Output paths (`dest=`) are written by the daemon, so
 * they must be reachable from it (the same machine, as a unix socket implies).
 */
export async function connectDaemon(addr: string): Promise<BuildService> {
  const path = socketPath(addr);
  // Fail early, before any upload, when nothing listens there.
  await new Promise<void>((resolvePromise, reject) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.end();
      resolvePromise();
    });
    probe.once("error", (error) =>
      reject(new KilnError("KILN_DAEMON_UNREACHABLE", `Cannot reach the kiln daemon at "${addr}": ${(error as NodeJS.ErrnoException).code ?? error.message}; start one with "kiln serve --addr ${addr}"`, { cause: error })),
    );
  });
  return {
    build: (options, signal, id) => remoteBuild(path, options, signal, id ?? newBuildId()),
    close: async () => {},
  };
}

function remoteBuild(path: string, options: BuildOptions, signal: AbortSignal | undefined, id: string) {
  const events = new EventChannel<ProgressEvent>();
  const result = (async (): Promise<BuildResult> => {
    signal?.throwIfAborted();
    const socket = connect(path);
    const onAbort = (): void => void socket.destroy();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await new Promise<void>((r, j) => socket.once("connect", r).once("error", j));
      const uploading = upload(socket, id, options, signal).catch((error: unknown) => {
        socket.destroy(error instanceof Error ? error : new Error(String(error)));
      });
      for await (const frame of readFrames(socket)) {
        if (frame.kind !== "message") continue;
        const message = frame.message;
        if (message.type === "event") events.push(message.event);
        else if (message.type === "result") {
          await uploading;
          socket.end();
          return message.result;
        } else if (message.type === "error") {
          socket.end();
          throw new RemoteBuildError(message.code, message.message, message.rendered);
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

/** Sends the build message, the context and the Dockerfile as one tar, and the end of the upload. */
async function upload(socket: Socket, id: string, options: BuildOptions, signal: AbortSignal | undefined): Promise<void> {
  const contextDir = resolve(options.context);
  const dockerfile = options.file === undefined ? join(contextDir, "Dockerfile") : resolve(options.file);
  const name = basename(dockerfile);
  const remote: BuildOptions = {
    ...options,
    context: UPLOAD_CONTEXT,
    file: `${UPLOAD_DOCKERFILE}/${name}`,
    // Output paths are the client's: make them absolute before they travel.
    outputs: (options.outputs ?? []).map(absoluteDest),
  };
  write(socket, encodeMessage({ type: "build", id, options: remote }));
  const ignore = await readIgnore(dockerfile, contextDir);
  // The Dockerfile (and its own .dockerignore) travel beside the context, which may not hold them.
  const extra = [];
  for (const [file, entry] of [[dockerfile, name], [`${dockerfile}.dockerignore`, `${name}.dockerignore`]] as const) {
    if (existsSync(file)) extra.push({ name: `${UPLOAD_DOCKERFILE}/${entry}`, data: await readFile(file) });
  }
  const archive = packContextArchive(contextDir, ignore, { prefix: `${UPLOAD_CONTEXT}/`, extra, ...(signal === undefined ? {} : { signal }) });
  for await (const chunk of archive) await write(socket, encodeData(chunk as Buffer));
  await write(socket, encodeMessage({ type: "upload.end" }));
}

function write(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (socket.write(bytes, (error) => (error ? reject(error) : undefined))) resolvePromise();
    else socket.once("drain", resolvePromise);
  });
}

/** The .dockerignore that applies: `<Dockerfile>.dockerignore` wins over the context's, as in BuildKit. */
async function readIgnore(dockerfile: string, contextDir: string) {
  for (const path of [`${dockerfile}.dockerignore`, join(contextDir, ".dockerignore")]) {
    if (!existsSync(path)) continue;
    return dockerignoreMatcher(parseDockerignore(createSourceFile(basename(path), await readFile(path, "utf8"))));
  }
  return undefined;
}

function absoluteDest(output: string): string {
  return output.replace(/(^|,)(dest=)([^,]+)/g, (_m, sep: string, key: string, value: string) => `${sep}${key}${resolve(value)}`);
}
