import type { Readable } from "node:stream";
import type { CommandContext } from "../commands/command.js";
import { KilnError } from "../../solver/llb/index.js";
import { UsageError } from "../options/usage-error.js";
import { dialDaemon } from "./client.js";
import { encodeDataChunks, encodeMessage, readFrames, RemoteBuildError, writeFrame, type RemoteCommand } from "./protocol.js";

/**
 * Runs `kiln NAME ARGV` on the daemon at `addr` (against its state root) and returns its exit
 * code: its output is written to this process's `context`, and `input` (a root filesystem tar,
 * an archive) is streamed to it as its standard input. A usage error on the daemon is a
 * UsageError here (exit 2); any other failure arrives as the daemon rendered it.
 */
export async function runOnDaemon(addr: string, name: RemoteCommand, argv: readonly string[], context: CommandContext, input?: Readable): Promise<number> {
  const socket = await dialDaemon(addr);
  socket.on("error", () => {});
  try {
    await writeFrame(socket, encodeMessage({ type: "command", name, argv }));
    const sending = (async () => {
      if (input !== undefined) {
        for await (const chunk of input) {
          for (const frame of encodeDataChunks(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer))) await writeFrame(socket, frame);
        }
      }
      await writeFrame(socket, encodeMessage({ type: "upload.end" }));
    })();
    // A failed upload ends the connection; the daemon's error (or the disconnect) says why.
    sending.catch((error: unknown) => socket.destroy(error instanceof Error ? error : new Error(String(error))));
    for await (const frame of readFrames(socket)) {
      if (frame.kind !== "message") continue;
      const message = frame.message;
      if (message.type === "output") (message.stream === "stdout" ? context.stdout : context.stderr)(message.text);
      else if (message.type === "exit") return message.code;
      else if (message.type === "error") {
        if (message.code === "KILN_USAGE") throw new UsageError(message.message);
        throw new RemoteBuildError(message.code, message.message, message.rendered);
      } else throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot handle a "${message.type}" message from the daemon during "kiln ${name}"`);
    }
    await sending.catch(() => {});
    throw new KilnError("KILN_DAEMON_DISCONNECTED", `Cannot finish "kiln ${name}": the kiln daemon closed the connection`);
  } finally {
    socket.destroy();
  }
}
