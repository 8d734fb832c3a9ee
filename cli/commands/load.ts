import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadArchive } from "../../exporter/index.js";
import { familiarReference, parseReference } from "../../worker/index.js";
import type { Engine } from "../api.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const loadHelp = `Usage: kiln load [-i ARCHIVE | ARCHIVE]

Load images from an archive (an OCI image layout tar, or a docker archive such as
docker save writes; gzip allowed) into kiln's local image store, like docker load.
Without an archive, reads standard input.

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
