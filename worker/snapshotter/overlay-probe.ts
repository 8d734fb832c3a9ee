import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { mountSnapshot, unmountSnapshot } from "./mount.js";
import { inUserNamespace } from "./user-namespace.js";

/** Whether overlay snapshots work under a directory, and if not, why. */
export type OverlaySupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Tries, once, what the overlay snapshotter will do under `dir` (the directory its snapshots will
 * live in, so the probe runs on the same filesystem): mount an overlay of a lower and an
 * upper/work pair with the same `userxattr` choice, copy a lower file up by writing it, and
 * rename a new directory (which fails with EXDEV when userxattr is missing in a user namespace). Everything is unmounted and removed before it returns. Never throws for an overlay
 * problem: a refused mount (a filesystem overlay cannot sit on, no permission, no overlay
 * module) comes back as `{ ok: false, reason }`.
 */
export async function probeOverlay(dir: string, options: { readonly userxattr?: boolean } = {}): Promise<OverlaySupport> {
  let base: string;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    base = await mkdtemp(join(dir, ".probe-"));
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
  const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((n) => join(base, n)) as [string, string, string, string];
  let mounted = false;
  try {
    for (const d of [lower, upper, work, merged]) await mkdir(d);
    await mkdir(join(lower, "dir"));
    await writeFile(join(lower, "dir/file"), "lower");
    mountSnapshot({ kind: "overlay", lowerdirs: [lower], upperdir: upper, workdir: work, userxattr: options.userxattr ?? inUserNamespace(), readonly: false }, merged);
    mounted = true;
    await writeFile(join(merged, "dir/file"), "upper");
    await mkdir(join(merged, "made"));
    await rename(join(merged, "made"), join(merged, "renamed"));
    if ((await readFile(join(lower, "dir/file"), "utf8")) !== "lower" || (await readFile(join(upper, "dir/file"), "utf8")) !== "upper") {
      return { ok: false, reason: "a write through the overlay did not land in the upper directory" };
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  } finally {
    let unmounted = true;
    if (mounted) {
      try {
        unmountSnapshot(merged);
      } catch {
        unmounted = false;
      }
    }
    // Never remove a tree that may still be mounted: it would delete through the mount.
    if (unmounted) await rm(base, { recursive: true, force: true }).catch(() => {});
  }
}

/** Where `probeOverlayRemembered` keeps its note, inside the probed directory. */
export const PROBE_NOTE = ".overlay-probe";

/**
 * `probeOverlay`, remembered for the rest of the boot: a successful probe leaves a note in `dir`
 * naming the boot (/proc/sys/kernel/random/boot_id), the device `dir` is on and the `userxattr`
 * choice, and a later call that finds the same three trusts it without mounting. A probe costs
 * an overlay unmount, which syncs the whole filesystem under it (3 ms to 150 ms on a busy
 * machine), and it ran at every kiln start. A failed probe is never remembered: the next start
 * tries again. A reboot, a kernel upgrade, a state root moved to another filesystem or a switch
 * in or out of a user namespace all change the note's key, so they probe again.
 */
export async function probeOverlayRemembered(dir: string, options: { readonly userxattr?: boolean } = {}): Promise<OverlaySupport> {
  const userxattr = options.userxattr ?? inUserNamespace();
  const key = await probeKey(dir, userxattr);
  const note = join(dir, PROBE_NOTE);
  if (key !== undefined) {
    const found = await readFile(note, "utf8").catch(() => undefined);
    if (found === key) return { ok: true };
  }
  const result = await probeOverlay(dir, { userxattr });
  // The key is taken again: the probe may have created `dir`, which fixes its device.
  const after = result.ok ? await probeKey(dir, userxattr) : undefined;
  if (after !== undefined) {
    const temp = `${note}.${process.pid}.tmp`;
    await writeFile(temp, after)
      .then(() => rename(temp, note))
      .catch(() => rm(temp, { force: true }));
  }
  return result;
}

/** What a remembered probe depends on; undefined when part of it cannot be read (then always probe). */
async function probeKey(dir: string, userxattr: boolean): Promise<string | undefined> {
  try {
    const [bootId, info] = await Promise.all([readFile("/proc/sys/kernel/random/boot_id", "utf8"), stat(dir)]);
    return `boot=${bootId.trim()} dev=${info.dev} userxattr=${userxattr}\n`;
  } catch {
    return undefined;
  }
}
