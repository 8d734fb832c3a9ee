import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { OFFLOAD_AFTER, StreamHash } from "./stream-hash.js";

function expected(chunks: readonly Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest("hex");
}

async function hashed(chunks: readonly Uint8Array[]): Promise<string> {
  const hash = new StreamHash();
  try {
    for (const chunk of chunks) await hash.update(chunk);
    return await hash.digest();
  } finally {
    hash.dispose();
  }
}

describe("StreamHash", () => {
  test("hashes an empty and a small stream inline", async () => {
    expect(await hashed([])).toBe(expected([]));
    const small = [Buffer.from("a"), randomBytes(70_000), Buffer.alloc(0), Buffer.from("z")];
    expect(await hashed(small)).toBe(expected(small));
  });

  test("hashes a stream larger than the inline limit on a worker, in order, with waits for a slow hasher", async () => {
    // 1 MiB chunks of distinct bytes, 150 MiB in all: past OFFLOAD_AFTER and past the bytes in flight.
    const chunks = Array.from({ length: 150 }, (_, i) => Buffer.alloc(1 << 20, i));
    expect(chunks.reduce((n, c) => n + c.byteLength, 0)).toBeGreaterThan(OFFLOAD_AFTER);
    const hash = new StreamHash();
    let waits = 0;
    for (const chunk of chunks) {
      const pending = hash.update(chunk);
      if (pending !== undefined) {
        waits++;
        await pending;
      }
    }
    expect(await hash.digest()).toBe(expected(chunks));
    expect(waits).toBeGreaterThan(0);
    // The order matters: the same chunks reversed give the other digest.
    expect(await hashed([...chunks].reverse())).toBe(expected([...chunks].reverse()));
  }, 60_000);

  test("a disposed hash stops its worker and leaves nothing running", async () => {
    const hash = new StreamHash();
    await hash.update(Buffer.alloc(OFFLOAD_AFTER + 1));
    hash.dispose();
    hash.dispose();
  });
});
