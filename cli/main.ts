import { readFileSync } from "node:fs";
import { isKilnError } from "../solver/llb/index.js";
import { createEngine, type Engine } from "./api.js";
import { buildHelp, runBuild } from "./commands/build.js";
import type { CommandContext } from "./commands/command.js";
import { imagesHelp, runImages } from "./commands/images.js";
import { importHelp, runImport } from "./commands/import.js";
import { UsageError } from "./options/usage-error.js";
import { renderError } from "./render/error.js";
import { defaultStateRoot } from "./state-root.js";

const HELP = `Usage: kiln [--root DIR] [--debug] COMMAND

A Dockerfile build engine.

Commands:
  build     Build an image from a Dockerfile
  images    List images in the local image store
  import    Make an image from a root filesystem
  version   Print kiln's version

Global options:
  --root DIR   State root (default: /var/lib/kiln as root, ~/.local/share/kiln otherwise; or $KILN_ROOT)
  --debug      Print stack traces with errors

Run 'kiln COMMAND --help' for a command's options.
`;

type Command = (argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>) => Promise<number>;

const COMMANDS: Readonly<Record<string, { run: Command; help: string }>> = {
  build: { run: runBuild, help: buildHelp },
  images: { run: runImages, help: imagesHelp },
  import: { run: runImport, help: importHelp },
};

/** The CLI: argv (without node and script) → exit code. 0 done, 1 failed, 2 usage error. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = [...argv];
  let root = defaultStateRoot();
  let debug = false;
  while (args[0]?.startsWith("-") === true) {
    const flag = args.shift()!;
    if (flag === "--root") {
      const value = args.shift();
      if (value === undefined) return usage("--root needs a directory");
      root = value;
    } else if (flag.startsWith("--root=")) root = flag.slice("--root=".length);
    else if (flag === "--debug") debug = true;
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
  const command = COMMANDS[name];
  if (command === undefined) return usage(`unknown command "${name}"`);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(command.help);
    return 0;
  }
  const context: CommandContext = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    root,
    debug,
  };
  try {
    return await command.run(args, context, () => createEngine({ root }));
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    process.stderr.write(renderError(error, { debug }));
    return isKilnError(error) && error.code === "KILN_USAGE" ? 2 : 1;
  }
}

function usage(message: string): number {
  process.stderr.write(`kiln: ${message}\nRun 'kiln --help' for usage.\n`);
  return 2;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
