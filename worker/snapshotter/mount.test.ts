import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { mountSnapshot, unmountSnapshot } from "./mount.js";
import { tempDir } from "./testing/layer-tar.js";
import type { SnapshotMount } from "./types.js";

/** The mount options /proc/self/mountinfo shows for the mount at `target` (its super options). */
async function mountOptions(target: string): Promise<string[]> {
  for (const line of (await readFile("/proc/self/mountinfo", "utf8")).split("\n")) {
    const fields = line.split(" ");
    if (fields[4] !== target) continue;
    const afterSeparator = fields.slice(fields.indexOf("-") + 1);
    return (afterSeparator[2] ?? "").split(",");
  }
  throw new Error(`"${target}" is not mounted`);
}

async function writableOverlay(): Promise<{ snapshot: SnapshotMount; merged: string; upper: string }> {
  const base = await tempDir();
  const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((d) => join(base, d)) as [string, string, string, string];
  for (const d of [lower, upper, work, merged]) await mkdir(d);
  await writeFile(join(lower, "file"), "lower");
  return { snapshot: { kind: "overlay", lowerdirs: [lower], upperdir: upper, workdir: work, userxattr: false, readonly: false }, merged, upper };
}

test("mountSnapshot() mounts a writable overlay volatile, so unmounting it syncs nothing", async () => {
  const { snapshot, merged, upper } = await writableOverlay();
  mountSnapshot(snapshot, merged);
  try {
    // Kernels since 6.7 show the option as "fsync=volatile", older ones as "volatile".
    expect((await mountOptions(merged)).some((o) => o === "volatile" || o === "fsync=volatile")).toBe(true);
    await writeFile(join(merged, "file"), "upper");
  } finally {
    unmountSnapshot(merged);
  }
  expect(await readFile(join(upper, "file"), "utf8")).toBe("upper");
});

test("mountSnapshot() mounts the same upper and work directories again after a clean unmount", async () => {
  const { snapshot, merged } = await writableOverlay();
  mountSnapshot(snapshot, merged);
  await writeFile(join(merged, "first"), "1");
  unmountSnapshot(merged);
  // The kernel leaves work/incompat/volatile behind and would refuse this mount with it there.
  mountSnapshot(snapshot, merged);
  try {
    expect(await readFile(join(merged, "first"), "utf8")).toBe("1");
    expect(await readFile(join(merged, "file"), "utf8")).toBe("lower");
  } finally {
    unmountSnapshot(merged);
  }
});
