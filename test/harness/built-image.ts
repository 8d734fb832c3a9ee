import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runKiln, type KilnRun, type Scratch } from "./kiln.js";
import { unpackOciArchive } from "./oci-tools.js";

/** A build that produced an OCI archive, unpacked by umoci (not kiln) into a runtime bundle. */
export interface BuiltImage {
  readonly run: KilnRun;
  /** The unpacked root filesystem. */
  readonly rootfs: string;
  /** The image config blob as stored (`config`, `history`, ...): read raw, since skopeo drops Docker-only fields such as OnBuild. */
  readonly spec: Record<string, unknown>;
  /** A file of the image's root filesystem as text. */
  read(path: string): Promise<string>;
}

/**
 * Runs `kiln build --progress plain ...args --output type=oci,dest=<name>.tar CONTEXT` and, when
 * it succeeds, unpacks the result with umoci. Throws with kiln's stderr when the build fails.
 */
export async function buildImage(scratch: Scratch, name: string, context: string, args: readonly string[] = []): Promise<BuiltImage> {
  const out = join(scratch.dir, `${name}.tar`);
  const run = await runKiln(scratch.root, ["build", "--progress", "plain", ...args, "--output", `type=oci,dest=${out}`, context]);
  if (run.code !== 0) throw new Error(`kiln build exited with ${run.code}:\n${run.stderr}`);
  const bundle = await unpackOciArchive(out, join(scratch.dir, `${name}-unpacked`));
  const rootfs = join(bundle, "rootfs");
  const spec = await readConfig(join(scratch.dir, `${name}-unpacked`, "layout"));
  return { run, rootfs, spec, read: (path) => readFile(join(rootfs, path), "utf8") };
}

/** The config blob of the single image in an OCI layout directory. */
async function readConfig(layout: string): Promise<Record<string, unknown>> {
  const blob = async (digest: string): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(join(layout, "blobs", ...digest.split(":")), "utf8")) as Record<string, unknown>;
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifest = (await blob(index.manifests[0]?.digest ?? "")) as { config: { digest: string } };
  return blob(manifest.config.digest);
}
