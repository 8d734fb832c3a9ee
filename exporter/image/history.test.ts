import { describe, expect, it } from "vitest";
import type { HistoryEntry } from "../../solver/llb/index.js";
import { clampHistory, MISSING_HISTORY_COMMENT, normalizeHistory } from "./history.js";

const NOW = "2024-05-01T00:00:00Z";
const layer = { empty: false };
const dropped = { empty: true };
const nonEmptyCount = (lines: readonly HistoryEntry[]): number => lines.filter((l) => l.empty_layer !== true).length;

describe("normalizeHistory()", () => {
  it("keeps history that already matches the layers and fills in missing created times", () => {
    const history: HistoryEntry[] = [
      { created: "2020-01-01T00:00:00Z", created_by: "ADD rootfs" },
      { created_by: "ENV A=1", empty_layer: true },
      { created_by: "RUN make" },
    ];
    expect(normalizeHistory(history, [layer, layer], NOW)).toEqual([
      { created: "2020-01-01T00:00:00Z", created_by: "ADD rootfs" },
      { created: NOW, created_by: "ENV A=1", empty_layer: true },
      { created: NOW, created_by: "RUN make" },
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
});

describe("clampHistory()", () => {
  it("sets times after the epoch to the epoch and keeps older ones", () => {
    const epoch = "2021-01-01T00:00:00Z";
    const result = clampHistory([{ created: "2019-01-01T00:00:00Z" }, { created: "2023-01-01T00:00:00Z" }, {}], epoch);
    expect(result.map((l) => l.created)).toEqual(["2019-01-01T00:00:00Z", epoch, epoch]);
  });
});
