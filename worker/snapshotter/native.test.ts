import { lstat, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { applyLayer } from "./apply-layer.js";
import { withMountedSnapshot } from "./mount.js";
import { createNativeSnapshotter } from "./native.js";
import { describeTree, layerTar, tarStreamOf, tempDir } from "./testing/layer-tar.js";

test("createNativeSnapshotter() copies the parent with owners, modes, times, xattrs, hardlinks and special files", async () => {
  const snapshotter = await createNativeSnapshotter(await tempDir());
  const base = await snapshotter.prepare(null);
  expect(base.mount).toEqual({ kind: "bind", source: base.upperdir, readonly: false });
  await applyLayer(tarStreamOf(await layerTar([
    { name: "etc/", type: "directory", mode: 0o750, uid: 3, gid: 4, mtime: 1_500_000_000 },
    { name: "etc/a", content: "a", uid: 1000, gid: 100, mode: 0o4750, mtime: 1_400_000_000, xattrs: { "user.x": "1", "trusted.y": "2" } },
    { name: "etc/b", type: "link", linkname: "etc/a" },
    { name: "bin/sh", type: "symlink", linkname: "busybox", uid: 9, gid: 9 },
    { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "dev/sda", type: "block-device", devmajor: 8, devminor: 0 },
    { name: "fifo", type: "fifo", mode: 0o640 },
  ])), base.upperdir, { layerName: "base", whiteouts: "native" });
  const baseId = await snapshotter.commit(base);
  const child = await snapshotter.prepare(baseId);
  expect(child.upperdir).not.toBe(base.upperdir);
  const expected = await describeTree(base.upperdir, { mtimes: true });
  expect(await describeTree(child.upperdir, { mtimes: true })).toEqual(expected);
  const [a, b] = await Promise.all([lstat(join(child.upperdir, "etc/a"), { bigint: true }), lstat(join(child.upperdir, "etc/b"), { bigint: true })]);
  expect(a.ino).toBe(b.ino);
  expect(a.mtimeNs).toBe((await lstat(join(base.upperdir, "etc/a"), { bigint: true })).mtimeNs);
  expect((await lstat(join(child.upperdir, "etc"), { bigint: true })).mtimeNs).toBe(1_500_000_000n * 1_000_000_000n);

  await withMountedSnapshot(child.mount, async (dir) => {
    await rm(join(dir, "fifo"));
    await writeFile(join(dir, "etc/new"), "new");
  });
  const childId = await snapshotter.commit(child);
  await withMountedSnapshot(await snapshotter.view(childId), async (dir) => {
    expect((await readdir(dir)).sort()).toEqual(["bin", "dev", "etc"]);
    expect(await readFile(join(dir, "etc/new"), "utf8")).toBe("new");
    await expect(writeFile(join(dir, "x"), "x")).rejects.toMatchObject({ code: "EROFS" });
  });
  await withMountedSnapshot(await snapshotter.view(baseId), async (dir) => {
    expect((await readdir(dir)).sort()).toEqual(["bin", "dev", "etc", "fifo"]);
  });
  await expect(snapshotter.remove(baseId)).rejects.toMatchObject({ code: "KILN_SNAPSHOT_IN_USE" });
  await snapshotter.remove(childId);
  await snapshotter.remove(baseId);
});
