import { createWriteStream } from "node:fs";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { importRootfs, packDirectory } from "../../exporter/index.js";
import { defaultPlatform, formatPlatform, KilnError, parsePlatform, type Digest } from "../../solver/llb/index.js";
import { unpackImage } from "../../worker/index.js";
import type { Engine } from "../api.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const importHelp = `Usage: kiln import [--platform OS/ARCH] ROOTFS NAME

Make a one-layer image from a root filesystem (a directory, a tar file, or "-": a tar on
standard input) and store it as NAME in kiln's local image store, like docker import.
With --addr, the root filesystem is streamed to the daemon and stored in its image store.
`;

export async function runImport(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  const args = [...argv];
  let platform = defaultPlatform();
  let platformGiven = false;
  const p = args.indexOf("--platform");
  if (p >= 0) {
    const value = args[p + 1];
    if (value === undefined) throw new UsageError("--platform needs a value");
    platform = parsePlatform(value);
    platformGiven = true;
    args.splice(p, 2);
  }
  const [source, name, ...rest] = args;
  if (source === undefined || name === undefined || rest.length > 0) throw new UsageError('"kiln import" requires exactly 2 arguments: ROOTFS NAME');
  if (context.addr !== undefined) {
    // The daemon gets a tar on its standard input: a directory is packed here exactly as a local import packs it.
    const input = await openRootfs(source, context);
    const { runOnDaemon } = await import("../daemon/remote-command.js");
    return runOnDaemon(context.addr, "import", [...(platformGiven ? ["--platform", formatPlatform(platform)] : []), "-", name], context, input);
  }
  const spooled = source === "-" ? await spool(context.stdin) : undefined;
  const engine = await openEngine();
  try {
    const image = await importRootfs({
      source: spooled?.file ?? resolve(source),
      name,
      content: engine.worker.content,
      images: engine.worker.images,
      platform,
    });
    // As docker import does, leave the image ready to run: its layer unpacked into a snapshot
    // (found by chain id), so the first build FROM it has nothing to unpack.
    await unpackImage({ snapshotter: engine.worker.snapshotter, content: engine.worker.content, layers: image.layers, diffIds: image.spec.rootfs.diff_ids as Digest[] });
    context.stdout(`${image.manifest.digest}\n`);
    return 0;
  } finally {
    await engine.close();
    if (spooled !== undefined) await rm(spooled.dir, { recursive: true, force: true });
  }
}

/** ROOTFS as a tar stream: a directory packed, a file as it is, "-" standard input. */
async function openRootfs(source: string, context: CommandContext): Promise<Readable> {
  if (source === "-") return context.stdin as Readable;
  const path = resolve(source);
  try {
    if ((await stat(path)).isDirectory()) return packDirectory(path);
    return (await open(path, "r")).createReadStream();
  } catch (error) {
    throw new KilnError("KILN_IMPORT_INVALID_SOURCE", `Cannot import "${path}": it cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

/** Standard input into a temporary file: importRootfs reads its source twice (gzip detection, then the layer). */
async function spool(stdin: NodeJS.ReadableStream): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-import-"));
  const file = join(dir, "rootfs.tar");
  try {
    await pipeline(stdin, createWriteStream(file));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { dir, file };
}
