import { resolve } from "node:path";
import { importRootfs } from "../../exporter/index.js";
import { defaultPlatform, parsePlatform } from "../../solver/llb/index.js";
import type { Engine } from "../api.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const importHelp = `Usage: kiln import [--platform OS/ARCH] ROOTFS NAME

Make a one-layer image from a root filesystem (a directory or a tar file) and store it as NAME
in kiln's local image store, like docker import.
`;

export async function runImport(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  const args = [...argv];
  let platform = defaultPlatform();
  const p = args.indexOf("--platform");
  if (p >= 0) {
    const value = args[p + 1];
    if (value === undefined) throw new UsageError("--platform needs a value");
    platform = parsePlatform(value);
    args.splice(p, 2);
  }
  const [source, name, ...rest] = args;
  if (source === undefined || name === undefined || rest.length > 0) throw new UsageError('"kiln import" requires exactly 2 arguments: ROOTFS NAME');
  const engine = await openEngine();
  try {
    const image = await importRootfs({
      source: resolve(source),
      name,
      content: engine.worker.content,
      images: engine.worker.images,
      platform,
    });
    context.stdout(`${image.manifest.digest}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}
