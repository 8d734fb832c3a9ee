import { familiarReference, parseReference } from "../../worker/index.js";
import type { Engine } from "../api.js";
import type { CommandContext } from "./command.js";

export const imagesHelp = `Usage: kiln images

List the images in kiln's local image store: name, manifest digest, size.
With --addr, lists the daemon's image store.
`;

export async function runImages(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  // Through a daemon: its state root, not this machine's local one.
  if (context.addr !== undefined) return (await import("../daemon/remote-command.js")).runOnDaemon(context.addr, "images", argv, context);
  const engine = await openEngine();
  try {
    const rows = [["NAME", "DIGEST", "SIZE"]];
    for (const image of await engine.worker.images.list()) {
      rows.push([familiarReference(parseReference(image.name)), image.descriptor.digest.slice(0, 19), await imageSize(engine, image.descriptor.digest)]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
    for (const row of rows) context.stdout(`${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("   ").trimEnd()}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

async function imageSize(engine: Engine, digest: import("../../solver/llb/index.js").Digest): Promise<string> {
  try {
    const manifest = await engine.worker.content.readJson<{ layers?: { size: number }[]; config?: { size: number } }>(digest);
    const bytes = (manifest.layers ?? []).reduce((sum, l) => sum + l.size, manifest.config?.size ?? 0);
    return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)}MB` : `${(bytes / 1024).toFixed(1)}kB`;
  } catch {
    return "?";
  }
}
