import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { mountSnapshot, unmountSnapshot } from "./mount.js";
import { probeOverlay } from "./overlay-probe.js";
import { tempDir } from "./testing/layer-tar.js";

test("probeOverlay() succeeds on a filesystem overlay can use and leaves nothing behind", async () => {
  const dir = join(await tempDir(), "snapshots");
  expect(await probeOverlay(dir, { userxattr: false })).toEqual({ ok: true });
  expect(await readdir(dir)).toEqual([]);
});

test("probeOverlay() reports why overlay cannot work where the upper directory would sit on an overlay", async () => {
  const base = await tempDir();
  for (const d of ["lower", "upper", "work", "merged"]) await mkdir(join(base, d));
  // overlayfs refuses another overlayfs as its upper filesystem: the state root of a build run
  // inside a container is the classic case.
  mountSnapshot({ kind: "overlay", lowerdirs: [join(base, "lower")], upperdir: join(base, "upper"), workdir: join(base, "work"), userxattr: false, readonly: false }, join(base, "merged"));
  try {
    const result = await probeOverlay(join(base, "merged", "snapshots"), { userxattr: false });
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.reason).toMatch(/overlay/);
    expect(await readdir(join(base, "merged", "snapshots"))).toEqual([]);
  } finally {
    unmountSnapshot(join(base, "merged"));
  }
});
