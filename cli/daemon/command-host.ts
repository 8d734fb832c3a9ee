import type { Readable } from "node:stream";
import { KilnError } from "../../solver/llb/index.js";
import type { Engine } from "../api.js";
import type { CommandContext } from "../commands/command.js";
import type { RemoteCommand } from "./protocol.js";

/** What a hosted command reads and where its output goes. */
export interface HostedIo {
  /** The command's standard input: what the client streamed (import's root filesystem, load's archive). */
  readonly input: Readable;
  readonly output: (stream: "stdout" | "stderr", text: string) => void;
  readonly signal: AbortSignal;
}

type Run = (argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>) => Promise<number>;

/** Each command's module, loaded when it runs (as cli/main.ts does). */
const RUNNERS: Readonly<Record<RemoteCommand, () => Promise<Run>>> = {
  images: async () => (await import("../commands/images.js")).runImages,
  rmi: async () => (await import("../commands/rmi.js")).runRmi,
  du: async () => (await import("../commands/du.js")).runDu,
  prune: async () => (await import("../commands/prune.js")).runPrune,
  import: async () => (await import("../commands/import.js")).runImport,
  load: async () => (await import("../commands/load.js")).runLoad,
  logs: async () => (await import("../commands/logs.js")).runLogs,
};

/**
 * Runs a client's command on the daemon, against the daemon's engine and state root, exactly as
 * `kiln NAME ARGV` would run there: the same parsing, output and exit code. The engine is shared:
 * the command's "close" of it does nothing.
 */
export async function runHostedCommand(engine: Engine, name: RemoteCommand, argv: readonly string[], io: HostedIo): Promise<number> {
  const load = RUNNERS[name];
  if (load === undefined) throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot run "${String(name)}" on the daemon: no such command`);
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) throw new KilnError("KILN_DAEMON_PROTOCOL", `Cannot run "${name}" on the daemon: its arguments are not strings`);
  const run = await load();
  const context: CommandContext = {
    stdout: (text) => io.output("stdout", text),
    stderr: (text) => io.output("stderr", text),
    stdin: io.input,
    stderrStream: process.stderr,
    root: engine.root,
    debug: false,
    addr: undefined,
  };
  io.signal.throwIfAborted();
  return run(argv, context, async () => ({ ...engine, close: async () => {} }));
}
