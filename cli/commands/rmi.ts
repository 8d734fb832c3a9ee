import { formatReference, familiarReference, parseReference } from "../../worker/index.js";
import { KilnError } from "../../solver/llb/index.js";
import type { Engine } from "../api.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const rmiHelp = `Usage: kiln rmi NAME [NAME...]

Remove names from kiln's local image store, like docker rmi. The blobs stay until pruned.
With --addr, removes them from the daemon's image store.
`;

/** `kiln rmi`: exit 0 when every name was removed, 1 when some name was not in the store. */
export async function runRmi(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  // Through a daemon: its state root, not this machine's local one.
  if (context.addr !== undefined) return (await import("../daemon/remote-command.js")).runOnDaemon(context.addr, "rmi", argv, context);
  if (argv.length === 0) throw new UsageError('"kiln rmi" requires at least 1 argument: NAME');
  const engine = await openEngine();
  try {
    const missing: string[] = [];
    for (const name of argv) {
      const ref = parseReference(name);
      if (await engine.worker.images.remove(formatReference(ref))) context.stdout(`Untagged: ${familiarReference(ref)}\n`);
      else missing.push(name);
    }
    if (missing.length > 0) {
      throw new KilnError("KILN_IMAGE_NOT_FOUND", `Cannot remove ${missing.map((n) => `"${n}"`).join(", ")}: no such image in the local store (see "kiln images")`);
    }
    return 0;
  } finally {
    await engine.close();
  }
}
