import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { liveLeases, SnapshotLeases } from "./snapshot-leases.js";

describe("SnapshotLeases", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "kiln-leases-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const a = "a".repeat(32);
  const b = "b".repeat(32);

  test("appends each snapshot once, one line each, visible to other readers at once", async () => {
    const leases = new SnapshotLeases(root);
    leases.add(a);
    expect(await liveLeases(root)).toEqual(new Set([a]));
    leases.add(b);
    leases.add(a);
    const [file] = await readdir(join(root, "leases"));
    expect(await readFile(join(root, "leases", file ?? ""), "utf8")).toBe(`${a}\n${b}\n`);
    expect(await liveLeases(root)).toEqual(new Set([a, b]));
    leases.releaseAll();
  });

  test("releaseAll drops every lease, and a later lease starts a new file", async () => {
    const leases = new SnapshotLeases(root);
    leases.add(a);
    leases.releaseAll();
    expect(await liveLeases(root)).toEqual(new Set());
    leases.add(b);
    expect(await liveLeases(root)).toEqual(new Set([b]));
    leases.releaseAll();
    expect(await readdir(join(root, "leases"))).toEqual([]);
  });
});
