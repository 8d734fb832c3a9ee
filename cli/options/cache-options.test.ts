import { describe, expect, test } from "vitest";
import type { CacheUsage } from "../../solver/index.js";
import { formatSize, parseCacheFilters, parseDuration, parseSize } from "./cache-options.js";

const usage = (over: Partial<CacheUsage["record"]> & { key?: string; shared?: boolean }): CacheUsage => ({
  key: (over.key ?? `sha256:${"ab".repeat(32)}`) as CacheUsage["key"],
  size: 10,
  shared: over.shared ?? false,
  record: { results: [], created: 0, lastUsed: over.lastUsed ?? 0, ...(over.type === undefined ? {} : { type: over.type }), vertexName: over.vertexName ?? "[1/2] RUN make" },
});

describe("cache flags", () => {
  test("parseSize() reads docker's binary units and refuses anything else", () => {
    expect(parseSize("5GB", "--keep-storage")).toBe(5 * 1024 ** 3);
    expect(parseSize("512kb", "--keep-storage")).toBe(512 * 1024);
    expect(parseSize("1.5m", "--keep-storage")).toBe(1.5 * 1024 ** 2);
    expect(parseSize("100", "--keep-storage")).toBe(100);
    expect(() => parseSize("lots", "--keep-storage")).toThrow(/--keep-storage "lots"/);
  });

  test("parseDuration() reads Go durations plus days", () => {
    expect(parseDuration("1h30m", "--keep-duration")).toBe(90 * 60_000);
    expect(parseDuration("7d", "--keep-duration")).toBe(7 * 86_400_000);
    expect(() => parseDuration("7 days", "--keep-duration")).toThrow(/expected a duration/);
  });

  test("parseCacheFilters() ands every filter and refuses unknown keys", () => {
    const match = parseCacheFilters(["type=exec", "description=make", "until=1h"], 10 * 3_600_000);
    expect(match(usage({ type: "exec", lastUsed: 0 }))).toBe(true);
    expect(match(usage({ type: "exec", lastUsed: 10 * 3_600_000 }))).toBe(false);
    expect(match(usage({ type: "file", lastUsed: 0 }))).toBe(false);
    expect(parseCacheFilters(["id=abab"])(usage({}))).toBe(true);
    expect(parseCacheFilters(["shared=true"])(usage({ shared: false }))).toBe(false);
    expect(() => parseCacheFilters(["colour=red"])).toThrow(/filter by type/);
  });

  test("formatSize() prints binary multiples", () => {
    expect(formatSize(512)).toBe("512B");
    expect(formatSize(1048576)).toBe("1.00MB");
  });
});
