import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { mountSnapshot, unmountSnapshot } from "./mount.js";
import { probeOverlay, probeOverlayRemembered, PROBE_NOTE } from "./overlay-probe.js";
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

test("probeOverlayRemembered() notes a successful probe and trusts the note on the next call", async () => {
  const dir = join(await tempDir(), "snapshots");
  expect(await probeOverlayRemembered(dir, { userxattr: false })).toEqual({ ok: true });
  expect(await readdir(dir)).toEqual([PROBE_NOTE]);
  const note = await readFile(join(dir, PROBE_NOTE), "utf8");
  expect(note).toMatch(/^boot=\S+ dev=\d+ userxattr=false\n$/);
  // A note for this boot is trusted: no probe directory is made, the answer is the same.
  expect(await probeOverlayRemembered(dir, { userxattr: false })).toEqual({ ok: true });
  expect(await readdir(dir)).toEqual([PROBE_NOTE]);
});

test("probeOverlayRemembered() probes again when the note is from another boot or userxattr choice", async () => {
  const base = await tempDir();
  for (const d of ["lower", "upper", "work", "merged"]) await mkdir(join(base, d));
  // Overlay cannot sit on overlay: a stale note there must not hide that.
  mountSnapshot({ kind: "overlay", lowerdirs: [join(base, "lower")], upperdir: join(base, "upper"), workdir: join(base, "work"), userxattr: false, readonly: false }, join(base, "merged"));
  try {
    const dir = join(base, "merged", "snapshots");
    await mkdir(dir);
    await writeFile(join(dir, PROBE_NOTE), "boot=00000000-0000-0000-0000-000000000000 dev=1 userxattr=false\n");
    const result = await probeOverlayRemembered(dir, { userxattr: false });
    expect(result.ok).toBe(false);
    // The failure is not remembered either: the stale note stays as it was.
    expect(await readFile(join(dir, PROBE_NOTE), "utf8")).toMatch(/^boot=00000000/);
  } finally {
    unmountSnapshot(join(base, "merged"));
  }
});
