import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isKilnError } from "../solver/llb/index.js";
import type { Engine } from "./api.js";
import { parseSnapshotter, type EngineOverrides } from "./options/snapshotter.js";
import type { CommandContext } from "./commands/command.js";
import { UsageError } from "./options/usage-error.js";
import { renderError } from "./render/error.js";
import { defaultStateRoot } from "./state-root.js";
import { needsRootlessReexec, reexecRootless } from "../worker/rootless/index.js";

const HELP = `Usage: kiln [--root DIR] [--addr ADDR] [--debug] COMMAND

A Dockerfile build engine.

Commands:
  build     Build an image from a Dockerfile
  images    List images in the local image store
  import    Make an image from a root filesystem
  load      Load images from an OCI or docker archive into the local image store
  rmi       Remove names from the local image store
  logs      Show the full output of recent builds' steps
  serve     Run as a daemon that builds for clients on a unix socket
  debug     Inspect a build without running it (dump-llb)
  du        Show what the build cache uses on disk
  prune     Remove build cache
  version   Print kiln's version

Global options:
  --root DIR   State root (default: /var/lib/kiln as root, ~/.local/share/kiln otherwise; or $KILN_ROOT)
  --addr ADDR  Send builds to the kiln daemon at ADDR (unix:///PATH; or $KILN_HOST); images, rmi,
               du, prune, import, load and logs then act on the daemon's state root
  --debug      Print stack traces with errors
  --snapshotter auto|overlay|native
               How snapshots are stored (default auto: overlay where it mounts, else copies)

Run 'kiln COMMAND --help' for a command's options.
`;

type Command = (argv: readonly string[], context: CommandContext, openEngine: (overrides?: EngineOverrides) => Promise<Engine>) => Promise<number>;

interface CommandModule {
  readonly run: Command;
  readonly help: string;
}

/**
 * Each command's module is loaded only when that command runs: loading every part of the engine
 * (and ink for the tty view) up front cost a second and a half of every invocation, `kiln
 * version` included.
 */
const COMMANDS: Readonly<Record<string, () => Promise<CommandModule>>> = {
  build: async () => import("./commands/build.js").then((m) => ({ run: m.runBuild, help: m.buildHelp })),
  images: async () => import("./commands/images.js").then((m) => ({ run: m.runImages, help: m.imagesHelp })),
  import: async () => import("./commands/import.js").then((m) => ({ run: m.runImport, help: m.importHelp })),
  load: async () => import("./commands/load.js").then((m) => ({ run: m.runLoad, help: m.loadHelp })),
  rmi: async () => import("./commands/rmi.js").then((m) => ({ run: m.runRmi, help: m.rmiHelp })),
  logs: async () => import("./commands/logs.js").then((m) => ({ run: m.runLogs, help: m.logsHelp })),
  serve: async () => import("./commands/serve.js").then((m) => ({ run: m.runServe, help: m.serveHelp })),
  debug: async () => import("./commands/debug.js").then((m) => ({ run: m.runDebug, help: m.debugHelp })),
  du: async () => import("./commands/du.js").then((m) => ({ run: m.runDu, help: m.duHelp })),
  prune: async () => import("./commands/prune.js").then((m) => ({ run: m.runPrune, help: m.pruneHelp })),
};

/** The CLI: argv (without node and script) → exit code. 0 done, 1 failed, 2 usage error. */
export async function main(argv: readonly string[]): Promise<number> {
  ignoreClosedPipe();
  const args = [...argv];
  let root = defaultStateRoot();
  let debug = false;
  let snapshotter: EngineOverrides["snapshotter"];
  let addr = process.env["KILN_HOST"] === "" ? undefined : process.env["KILN_HOST"];
  while (args[0]?.startsWith("-") === true) {
    const flag = args.shift()!;
    if (flag === "--root") {
      const value = args.shift();
      if (value === undefined) return usage("--root needs a directory");
      root = value;
    } else if (flag.startsWith("--root=")) root = flag.slice("--root=".length);
    else if (flag === "--addr" || flag === "-H") {
      const value = args.shift();
      if (value === undefined) return usage(`${flag} needs an address`);
      addr = value;
    } else if (flag.startsWith("--addr=")) addr = flag.slice("--addr=".length);
    else if (flag === "--snapshotter" || flag.startsWith("--snapshotter=")) {
      const value = flag === "--snapshotter" ? args.shift() : flag.slice("--snapshotter=".length);
      try {
        snapshotter = parseSnapshotter(value);
      } catch (error) {
        return usage((error as Error).message);
      }
    } else if (flag === "--debug") debug = true;
    else if (flag === "--help" || flag === "-h") {
      process.stdout.write(HELP);
      return 0;
    } else if (flag === "--version") args.unshift("version");
    else return usage(`unknown flag "${flag}"`);
  }
  const name = args.shift();
  if (name === undefined) {
    process.stderr.write(HELP);
    return 2;
  }
  if (name === "version") {
    process.stdout.write(`kiln ${version()}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) return usage(`unknown command "${name}"`);
  const command = await load();
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(command.help);
    return 0;
  }
  // Not root: re-enter in a user namespace where this user is root over its subordinate ids
  // (worker/rootless), before the command opens anything. The inner kiln skips this.
  // A client of a daemon and "kiln logs" touch no snapshot: they need no namespace.
  if ((addr === undefined || name === "serve") && name !== "logs" && needsRootlessReexec()) {
    try {
      return await reexecRootless({ command: [process.execPath, ...process.execArgv, process.argv[1] ?? "", ...argv] });
    } catch (error) {
      process.stderr.write(renderError(error, { debug }));
      return 1;
    }
  }
  const context: CommandContext = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdin: process.stdin,
    stderrStream: process.stderr,
    root,
    debug,
    addr,
  };
  try {
    return await command.run(args, context, async (overrides) => {
      const chosen = overrides?.snapshotter ?? snapshotter;
      const { createEngine } = await import("./api.js");
      // A daemon collects in its own process; a command line hands it to one of its own.
      return createEngine({ root, ...(chosen === undefined ? {} : { snapshotter: chosen }), ...(name === "serve" ? {} : { detachGc: (r: string) => detachGc(r, chosen) }) });
    });
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    process.stderr.write(renderError(error, { debug }));
    return isKilnError(error) && error.code === "KILN_USAGE" ? 2 : 1;
  }
}

/**
 * Starts `kiln --root ROOT prune --auto` as a detached process (as git detaches `gc --auto`): the
 * build that found the garbage collection due has its result, and its command exits now. The
 * collection's output goes to ROOT/cache/gc.log. It inherits this process's namespaces, so a
 * rootless kiln's collection runs in the same user namespace.
 */
function detachGc(root: string, snapshotter: string | undefined): void {
  const kiln = fileURLToPath(new URL("../../bin/kiln", import.meta.url));
  let log: number | "ignore" = "ignore";
  try {
    log = openSync(join(root, "cache", "gc.log"), "w");
  } catch {
    // No log then; the collection still runs.
  }
  try {
    const args = [kiln, "--root", root, ...(snapshotter === undefined ? [] : ["--snapshotter", snapshotter]), "prune", "--auto"];
    const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", log, log] });
    child.on("error", () => {});
    child.unref();
  } catch {
    // Best effort, as the collection itself: the next build that finds it due starts it again.
  } finally {
    if (log !== "ignore") closeSync(log);
  }
}

let pipeWatched = false;

/**
 * A reader that goes away (`kiln images | head -1`) ends kiln's output, not kiln: stdout's EPIPE
 * is not an uncaught error. The command finishes (a build still records what it did), and what
 * it writes after that goes nowhere.
 */
function ignoreClosedPipe(): void {
  if (pipeWatched) return;
  pipeWatched = true;
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
}

function usage(message: string): number {
  process.stderr.write(`kiln: ${message}\nRun 'kiln --help' for usage.\n`);
  return 2;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
