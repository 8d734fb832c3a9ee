import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, onTestFinished, test } from "vitest";
import { assertSubordinateIds, freeRangeStart, parseSubordinateIds, rangesOf } from "./subid.js";

async function files(subuid: string, subgid: string) {
  const dir = await mkdtemp(join(tmpdir(), "kiln-subid-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "subuid"), subuid);
  await writeFile(join(dir, "subgid"), subgid);
  return { subuid: join(dir, "subuid"), subgid: join(dir, "subgid") };
}

describe("subordinate ids", () => {
  test("parseSubordinateIds() reads name:start:count lines and skips comments and malformed ones", () => {
    expect(parseSubordinateIds("# comment\nalice:100000:65536\nbroken\n1001:165536:65536\nbob:x:1\n")).toEqual([
      { owner: "alice", start: 100000, count: 65536 },
      { owner: "1001", start: 165536, count: 65536 },
    ]);
  });

  test("rangesOf() matches a user by name or by numeric id", () => {
    const text = "alice:100000:65536\n1001:165536:65536\nbob:231072:65536\n";
    expect(rangesOf(text, { name: "alice", id: 1001 }).map((r) => r.start)).toEqual([100000, 165536]);
  });

  test("freeRangeStart() picks the first aligned 65536-id range that overlaps none", () => {
    expect(freeRangeStart([""])).toBe(100000);
    expect(freeRangeStart(["a:100000:65536\nb:165536:65536\n", "c:231072:10\n"])).toBe(262144);
  });

  test("assertSubordinateIds() accepts a user with both ranges", async () => {
    const f = await files("alice:100000:65536\n", "alice:100000:65536\n");
    expect(() => assertSubordinateIds({ name: "alice", id: 1000 }, f)).not.toThrow();
  });

  test("assertSubordinateIds() names the exact line and file to add when a range is missing", async () => {
    const f = await files("bob:100000:65536\nalice:165536:65536\n", "bob:100000:65536\n");
    expect(() => assertSubordinateIds({ name: "alice", id: 1000 }, f)).toThrow(
      expect.objectContaining({
        code: "KILN_ROOTLESS_NO_SUBID",
        message: `Cannot run kiln rootless: user "alice" (uid 1000) has no subordinate id range in ${f.subgid}; add the line "alice:262144:65536" to ${f.subgid} (as root: usermod --add-subgids 262144-327679 alice)`,
      }),
    );
  });
});
