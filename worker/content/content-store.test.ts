import { mkdtemp, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { Digest } from "../../solver/llb/index.js";
import { ContentStore, TOUCH_INTERVAL_MS } from "./content-store.js";

describe("ContentStore.touch and has", () => {
  let root: string;
  let content: ContentStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "kiln-content-"));
    content = await ContentStore.open(join(root, "content"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const backdate = async (digest: Digest, ms: number): Promise<number> => {
    const when = (Date.now() - ms) / 1000;
    await utimes(content.path(digest), when, when);
    return (await stat(content.path(digest))).mtimeMs;
  };

  test("has() refreshes the mtime of a blob last touched longer ago than the touch interval", async () => {
    const blob = await content.writeBytes(Buffer.from("old blob"));
    const before = await backdate(blob.digest, 2 * TOUCH_INTERVAL_MS);
    expect(await content.has(blob.digest)).toBe(true);
    const after = (await stat(content.path(blob.digest))).mtimeMs;
    expect(after).toBeGreaterThan(before + TOUCH_INTERVAL_MS);
  });

  test("has() leaves the mtime of a recently touched blob as it is, so a cached build writes nothing", async () => {
    const blob = await content.writeBytes(Buffer.from("recent blob"));
    const before = await backdate(blob.digest, TOUCH_INTERVAL_MS / 10);
    expect(await content.has(blob.digest)).toBe(true);
    expect((await stat(content.path(blob.digest))).mtimeMs).toBe(before);
  });

  test("has() and touch() say false for a blob that is not stored", async () => {
    const missing = `sha256:${"0".repeat(64)}` as Digest;
    expect(await content.has(missing)).toBe(false);
    expect(await content.touch(missing)).toBe(false);
  });
});
