import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** `skopeo inspect` of an image (e.g. `oci-archive:/tmp/x.tar`), parsed. */
export async function skopeoInspect(ref: string, options: { config?: boolean } = {}): Promise<Record<string, unknown>> {
  const args = ["inspect", ...(options.config === true ? ["--config"] : []), "--tls-verify=false", ref];
  const { stdout } = await execFileAsync("skopeo", args, { maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/**
 * Unpacks an OCI image tarball with umoci (not kiln's code) into a runtime bundle in `dir`, with
 * `process.terminal` set to false so runc can run it without a terminal. Returns the bundle path.
 */
export async function unpackOciArchive(archive: string, dir: string, tag = "latest"): Promise<string> {
  const layout = join(dir, "layout");
  const bundle = join(dir, "bundle");
  await mkdir(layout, { recursive: true });
  await execFileAsync("tar", ["-xf", archive, "-C", layout]);
  await execFileAsync("umoci", ["unpack", "--rootless", "--image", `${layout}:${tag}`, bundle]);
  const configPath = join(bundle, "config.json");
  const config = JSON.parse(await readFile(configPath, "utf8")) as { process: { terminal: boolean } };
  config.process.terminal = false;
  await writeFile(configPath, JSON.stringify(config));
  return bundle;
}

/** Runs a bundle with runc (its own state root under `dir`) and returns its stdout. */
export async function runcRun(bundle: string, dir: string, id: string): Promise<{ stdout: string; stderr: string }> {
  const { stdout, stderr } = await execFileAsync("runc", ["--root", join(dir, "runc-state"), "run", "--bundle", bundle, id], { maxBuffer: 16 << 20 });
  return { stdout, stderr };
}
