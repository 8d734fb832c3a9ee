import { open } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadArchive } from "../../exporter/index.js";
import { familiarReference, parseReference } from "../../worker/index.js";
import { KilnError } from "../../solver/llb/index.js";
import type { Engine } from "../api.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const loadHelp = `Usage: kiln load [-i ARCHIVE | ARCHIVE]

Load images from an archive (an OCI image layout tar, or a docker archive such as
docker save writes; gzip allowed) into kiln's local image store, like docker load.
Without an archive, reads standard input.

With --addr, the archive is streamed to the daemon and loaded into its image store.

Options:
  -i, --input FILE   Read from FILE instead of standard input
`;

/** `kiln load`: prints each loaded name, or the manifest digest of an image without one. */
export async function runLoad(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { input: { type: "string", short: "i" } } });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1 || (positionals.length === 1 && values.input !== undefined)) throw new UsageError('"kiln load" takes one archive: -i FILE or FILE');
  const file = values.input ?? positionals[0];
  if (context.addr !== undefined) {
    // The archive is streamed to the daemon, which loads it into its own image store.
    const input = file === undefined || file === "-" ? (context.stdin as import("node:stream").Readable) : await openArchive(resolve(file));
    return (await import("../daemon/remote-command.js")).runOnDaemon(context.addr, "load", ["-"], context, input);
  }
  const engine = await openEngine();
  try {
    const source = file === undefined || file === "-" ? (context.stdin as import("node:stream").Readable) : resolve(file);
    const loaded = await loadArchive(source, { content: engine.worker.content, images: engine.worker.images });
    for (const image of loaded) {
      if (image.names.length === 0) context.stdout(`Loaded image ID: ${image.manifest.digest}\n`);
      for (const name of image.names) context.stdout(`Loaded image: ${familiarReference(parseReference(name))}\n`);
    }
    return 0;
  } finally {
    await engine.close();
  }
}

async function openArchive(path: string): Promise<import("node:stream").Readable> {
  try {
    return (await open(path, "r")).createReadStream();
  } catch (error) {
    throw new KilnError("KILN_LOAD_INVALID_SOURCE", `Cannot load "${path}": it cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}
