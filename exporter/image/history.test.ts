import { describe, expect, it } from "vitest";
import type { HistoryEntry } from "../../solver/llb/index.js";
import { clampHistory, imageCreated, MISSING_HISTORY_COMMENT, normalizeHistory } from "./history.js";

const NOW = "2024-05-01T00:00:00Z";
const layer = { empty: false };
const dropped = { empty: true };
const nonEmptyCount = (lines: readonly HistoryEntry[]): number => lines.filter((l) => l.empty_layer !== true).length;

describe("normalizeHistory()", () => {
  it("keeps history that already matches the layers and fills in missing times from the lines around them", () => {
    const history: HistoryEntry[] = [
      { created: "2020-01-01T00:00:00Z", created_by: "ADD rootfs" },
      { created_by: "ENV A=1", empty_layer: true },
      { created_by: "RUN make" },
    ];
    expect(normalizeHistory(history, [layer, layer], NOW)).toEqual([
      { created: "2020-01-01T00:00:00Z", created_by: "ADD rootfs" },
      { created: "2020-01-01T00:00:00Z", created_by: "ENV A=1", empty_layer: true },
      { created: "2020-01-01T00:00:00Z", created_by: "RUN make" },
    ]);
  });

  it("marks the line of a dropped empty layer as empty_layer", () => {
    const history: HistoryEntry[] = [{ created_by: "base" }, { created_by: "RUN true" }, { created_by: "RUN touch x" }];
    const result = normalizeHistory(history, [layer, dropped, layer], NOW);
    expect(result.map((l) => [l.created_by, l.empty_layer === true])).toEqual([
      ["base", false],
      ["RUN true", true],
      ["RUN touch x", false],
    ]);
    expect(nonEmptyCount(result)).toBe(2);
  });

  it("inserts lines at the bottom for base layers that have no history, so build lines keep their layers", () => {
    const result = normalizeHistory([{ created_by: "RUN make" }], [layer, layer, layer], NOW);
    expect(result.map((l) => [l.created_by, l.comment])).toEqual([
      ["", MISSING_HISTORY_COMMENT],
      ["", MISSING_HISTORY_COMMENT],
      ["RUN make", undefined],
    ]);
    expect(nonEmptyCount(result)).toBe(3);
  });

  it("marks lines left over at the bottom as empty when there are more lines than layers", () => {
    const history: HistoryEntry[] = [{ created_by: "old 1" }, { created_by: "old 2" }, { created_by: "RUN make" }];
    const result = normalizeHistory(history, [layer], NOW);
    expect(result.map((l) => [l.created_by, l.empty_layer === true])).toEqual([
      ["old 1", true],
      ["old 2", true],
      ["RUN make", false],
    ]);
  });

  it("gives an image of only dropped layers no non-empty line", () => {
    const result = normalizeHistory([{ created_by: "RUN true" }], [dropped], NOW);
    expect(result).toEqual([{ created_by: "RUN true", empty_layer: true, created: NOW }]);
  });

  it("dates each line by its layer's snapshot, so a cached rebuild gets the same times", () => {
    const t1 = "2024-01-01T10:00:00Z";
    const t2 = "2024-01-02T10:00:00Z";
    const history: HistoryEntry[] = [{ created_by: "base" }, { created_by: "ENV A=1", empty_layer: true }, { created_by: "RUN make" }, { created_by: "LABEL x=y", empty_layer: true }];
    const result = normalizeHistory(history, [{ empty: false, created: t1 }, { empty: false, created: t2 }], NOW);
    expect(result.map((l) => [l.created_by, l.created])).toEqual([
      ["base", t1],
      ["ENV A=1", t2],
      ["RUN make", t2],
      ["LABEL x=y", t2],
    ]);
    expect(imageCreated(result, NOW)).toBe(t2);
    // A line that has a time keeps it; the line of a base layer without history gets the layer's.
    const kept = normalizeHistory([{ created: "2020-01-01T00:00:00Z", created_by: "RUN a" }], [{ empty: false, created: t1 }, { empty: false, created: t2 }], NOW);
    expect(kept.map((l) => l.created)).toEqual([t1, "2020-01-01T00:00:00Z"]);
  });

  it("gives lines before the first dated one that line's time, and later gaps the time before them (BuildKit's rule)", () => {
    const history: HistoryEntry[] = [{ created_by: "ENV A=1", empty_layer: true }, { created_by: "RUN a" }, { created_by: "ENV B=1", empty_layer: true }, { created: "2020-01-01T00:00:00Z", created_by: "RUN b" }];
    const result = normalizeHistory(history, [{ empty: false, created: "2024-01-01T00:00:00Z" }, { empty: false }], NOW);
    expect(result.map((l) => l.created)).toEqual(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]);
  });

  it("falls back to the given time only when nothing has one", () => {
    const result = normalizeHistory([{ created_by: "ENV A=1", empty_layer: true }], [], NOW);
    expect(result).toEqual([{ created_by: "ENV A=1", empty_layer: true, created: NOW }]);
    expect(imageCreated(result, NOW)).toBe(NOW);
    expect(imageCreated([], NOW)).toBe(NOW);
  });
});

describe("clampHistory()", () => {
  it("sets times after the epoch to the epoch and keeps older ones", () => {
    const epoch = "2021-01-01T00:00:00Z";
    const result = clampHistory([{ created: "2019-01-01T00:00:00Z" }, { created: "2023-01-01T00:00:00Z" }, {}], epoch);
    expect(result.map((l) => l.created)).toEqual(["2019-01-01T00:00:00Z", epoch, epoch]);
  });
});
