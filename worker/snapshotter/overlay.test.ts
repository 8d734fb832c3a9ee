import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test, vi } from "vitest";
import { sha256 } from "../../solver/llb/index.js";
import { withMountedSnapshot } from "./mount.js";
import { createOverlaySnapshotter } from "./overlay.js";
import { tempDir } from "./testing/layer-tar.js";
import type { Snapshotter } from "./types.js";

async function layer(snapshotter: Snapshotter, parent: string | null, files: Record<string, string>): Promise<string> {
  const active = await snapshotter.prepare(parent);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(active.upperdir, name, ".."), { recursive: true });
    await writeFile(join(active.upperdir, name), content);
  }
  return snapshotter.commit(active);
}

describe("createOverlaySnapshotter()", () => {
  test("prepare, write through the mount, commit and view round-trip", async () => {
    const root = await tempDir();
    const snapshotter = await createOverlaySnapshotter(root, { userxattr: false });
    const base = await snapshotter.prepare(null);
    expect(base.mount).toEqual({ kind: "bind", source: base.upperdir, readonly: false });
    await withMountedSnapshot(base.mount, async (dir) => {
      await mkdir(join(dir, "etc"));
      await writeFile(join(dir, "etc/hello"), "hello");
      await writeFile(join(dir, "doomed"), "x");
    });
    const baseId = await snapshotter.commit(base);
    expect((await snapshotter.info(baseId)).kind).toBe("committed");
    // The workdir goes in the background of the commit.
    await vi.waitFor(() => expect(existsSync(join(root, "snapshots", baseId, "work"))).toBe(false));

    const child = await snapshotter.prepare(baseId);
    expect(child.mount).toMatchObject({ kind: "overlay", lowerdirs: [join(root, "snapshots", baseId, "fs")], upperdir: child.upperdir, readonly: false });
    await withMountedSnapshot(child.mount, async (dir) => {
      expect(await readFile(join(dir, "etc/hello"), "utf8")).toBe("hello");
      await rm(join(dir, "doomed"));
      await writeFile(join(dir, "etc/new"), "new");
    });
    const childId = await snapshotter.commit(child);

    const whiteout = await lstat(join(child.upperdir, "doomed"));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    await withMountedSnapshot(await snapshotter.view(childId), async (dir) => {
      expect((await readdir(dir)).sort()).toEqual(["etc"]);
      expect((await readdir(join(dir, "etc"))).sort()).toEqual(["hello", "new"]);
      await expect(writeFile(join(dir, "etc/ro"), "x")).rejects.toMatchObject({ code: "EROFS" });
    });
    await withMountedSnapshot(await snapshotter.view(baseId), async (dir) => {
      expect((await readdir(dir)).sort()).toEqual(["doomed", "etc"]);
      await expect(writeFile(join(dir, "x"), "x")).rejects.toMatchObject({ code: "EROFS" });
    });
    await withMountedSnapshot(await snapshotter.view(null), async (dir) => {
      expect(await readdir(dir)).toEqual([]);
    });
    expect((await snapshotter.chain(childId)).map((s) => s.id)).toEqual([baseId, childId]);
  });

  test("mounts a chain of 200 layers and shows every layer's file", async () => {
    const root = await tempDir();
    const snapshotter = await createOverlaySnapshotter(root, { userxattr: false });
    let parent: string | null = null;
    for (let i = 0; i < 200; i++) parent = await layer(snapshotter, parent, { [`layer-${i}`]: String(i) });
    const top = parent as string;
    const view = await snapshotter.view(top);
    expect(view.kind === "overlay" && view.lowerdirs.join(":").length).toBeGreaterThan(4096);
    await withMountedSnapshot(view, async (dir) => {
      const names = await readdir(dir);
      expect(names.length).toBe(200);
      expect(await readFile(join(dir, "layer-0"), "utf8")).toBe("0");
      expect(await readFile(join(dir, "layer-199"), "utf8")).toBe("199");
    });
    const active = await snapshotter.prepare(top);
    await withMountedSnapshot(active.mount, async (dir) => {
      await writeFile(join(dir, "layer-200"), "200");
      expect((await readdir(dir)).length).toBe(201);
    });
    await snapshotter.abort(active);
  });

  test("remove() refuses while a child exists, then removes leaf first", async () => {
    const root = await tempDir();
    const snapshotter = await createOverlaySnapshotter(root, { userxattr: false });
    const base = await layer(snapshotter, null, { a: "a" });
    const child = await layer(snapshotter, base, { b: "b" });
    await expect(snapshotter.remove(base)).rejects.toMatchObject({ code: "KILN_SNAPSHOT_IN_USE" });
    await snapshotter.remove(child);
    expect(await snapshotter.exists(child)).toBe(false);
    await snapshotter.remove(base);
    expect(await readdir(join(root, "snapshots"))).toEqual([]);
  });

  test("an active child also blocks remove(), and abort() deletes its directories", async () => {
    const root = await tempDir();
    const snapshotter = await createOverlaySnapshotter(root, { userxattr: false });
    const base = await layer(snapshotter, null, { a: "a" });
    const active = await snapshotter.prepare(base);
    await expect(snapshotter.remove(base)).rejects.toMatchObject({ code: "KILN_SNAPSHOT_IN_USE" });
    await snapshotter.abort(active);
    await expect(stat(join(root, "snapshots", active.id))).rejects.toThrow();
    expect(await snapshotter.exists(active.id)).toBe(false);
    await snapshotter.remove(base);
  });

  test("refuses to prepare on an active snapshot, commit twice or view an unknown id", async () => {
    const root = await tempDir();
    const snapshotter = await createOverlaySnapshotter(root, { userxattr: false });
    const active = await snapshotter.prepare(null);
    await expect(snapshotter.prepare(active.id)).rejects.toMatchObject({ code: "KILN_SNAPSHOT_STATE" });
    await snapshotter.commit(active);
    await expect(snapshotter.commit(active)).rejects.toMatchObject({ code: "KILN_SNAPSHOT_STATE" });
    await expect(snapshotter.view("0".repeat(32))).rejects.toMatchObject({ code: "KILN_SNAPSHOT_NOT_FOUND" });
    await expect(snapshotter.view("../../etc")).rejects.toMatchObject({ code: "KILN_SNAPSHOT_NOT_FOUND" });
  });

  test("records chain ids and blobs, and finds them from another snapshotter on the same root", async () => {
    const root = await tempDir();
    const snapshotter = await createOverlaySnapshotter(root, { userxattr: false });
    const chainId = sha256("chain");
    const active = await snapshotter.prepare(null);
    const id = await snapshotter.commit(active, { chainId });
    const blob = { descriptor: { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256("blob"), size: 4 }, diffId: sha256("diff") };
    await snapshotter.setBlob(id, blob);
    const reopened = await createOverlaySnapshotter(root, { userxattr: false });
    expect(await reopened.findChain(chainId)).toBe(id);
    expect(await reopened.findChain(sha256("other"))).toBeUndefined();
    expect(await reopened.info(id)).toMatchObject({ id, parent: null, kind: "committed", chainId, blob });
    await reopened.remove(id);
    expect(await snapshotter.findChain(chainId)).toBeUndefined();
  });
});
