import { describe, expect, test } from "vitest";
import { formatSeconds, formatSummary, summarize } from "./stats.js";

describe("summarize", () => {
  test("an odd sample's median is its middle value, whatever the order", () => {
    expect(summarize([300, 100, 200])).toEqual({ n: 3, median: 200, min: 100, max: 300 });
  });

  test("an even sample's median is the mean of the middle two", () => {
    expect(summarize([4, 1, 3, 2])?.median).toBe(2.5);
  });

  test("an empty sample has no summary", () => {
    expect(summarize([])).toBeUndefined();
  });
});

describe("formatting", () => {
  test("seconds keep two decimals below 10 s and one above", () => {
    expect(formatSeconds(1234)).toBe("1.23 s");
    expect(formatSeconds(12345)).toBe("12.3 s");
  });

  test("a summary shows the range only when there is more than one run", () => {
    expect(formatSummary({ n: 1, median: 1000, min: 1000, max: 1000 })).toBe("1.00 s");
    expect(formatSummary({ n: 3, median: 1000, min: 900, max: 1500 })).toBe("1.00 s (0.90–1.50 s)");
  });
});
