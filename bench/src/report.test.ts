import { describe, expect, test } from "vitest";
import { renderChart } from "./chart.js";
import { renderResults } from "./report.js";
import type { BenchResults, RowResult } from "./results.js";
import { checkTargets } from "./targets.js";

function results(rows: RowResult[]): BenchResults {
  return {
    date: "2026-01-01T00:00:00.000Z",
    durationS: 60,
    mode: "quick",
    reps: 1,
    machine: { cpu: "Test CPU", cores: 2, memoryGiB: 4, kernel: "6.0", os: "Debian", node: "v20", loadAtStart: 1 },
    versions: { kiln: "kiln 0.1.0", buildkit: "docker 20.10", buildah: "buildah 1.28" },
    reference: { nodeStartMs: [50], kilnVersionMs: [120], parseLowerMs: [], parseOnlyMs: [], parseLowerNote: "not run" },
    rows,
  };
}

const cached40: RowResult = {
  workload: "many-steps",
  title: "40 small steps",
  scenario: "cached",
  cells: { kiln: { samples: [600, 500, 700], peakRssKiB: [102400] }, buildkit: { samples: [400], peakRssKiB: [] }, buildah: { samples: [1000], peakRssKiB: [] } },
};

const push: RowResult = {
  workload: "export-push",
  title: "300 MiB incompressible layer",
  scenario: "push",
  cells: {
    kiln: { samples: [], peakRssKiB: [], note: { kind: "unsupported", reason: "Cannot push: registry push is not implemented yet" } },
    buildkit: { samples: [9000], peakRssKiB: [] },
    buildah: { samples: [5000], peakRssKiB: [] },
  },
};

describe("RESULTS.md", () => {
  test("a row kiln cannot run says so with the reason instead of disappearing", () => {
    const text = renderResults(results([cached40, push]));
    expect(text).toContain("| kiln: not supported yet (Cannot push: registry push is not implemented yet) | 9.00 s | 5.00 s | – | – | – |");
  });

  test("a builder the harness left out of a row says why", () => {
    const row: RowResult = { ...cached40, cells: { ...cached40.cells, buildah: { samples: [], peakRssKiB: [], note: { kind: "skipped", reason: "took over 900 s" } } } };
    expect(renderResults(results([row]))).toContain("| 0.40 s | not run (took over 900 s) | 1.50× | – |");
  });

  test("a measured row shows medians with ranges, both ratios and kiln's peak memory", () => {
    const text = renderResults(results([cached40]));
    expect(text).toContain("| 40 small steps | fully cached | 0.60 s (0.50–0.70 s) | 0.40 s | 1.00 s | 1.50× | 0.60× | 100 MiB |");
  });
});

describe("targets", () => {
  test("a ratio over the limit is reported as not met, with the ratio", () => {
    const check = checkTargets(results([cached40])).find((c) => c.target.startsWith("fully cached 40-step"));
    expect(check).toMatchObject({ status: "not met", detail: "kiln/BuildKit 1.50×" });
  });

  test("the parallel-sleep target compares three stages with kiln's own one-stage build", () => {
    const sleepRow = (workload: string, kiln: number[]): RowResult => ({
      workload,
      title: workload,
      scenario: "cold",
      cells: { kiln: { samples: kiln, peakRssKiB: [] }, buildkit: { samples: [3500], peakRssKiB: [] } },
    });
    const target = (rows: RowResult[]) => checkTargets(results(rows)).find((c) => c.target.startsWith("three parallel sleep-3"));
    expect(target([sleepRow("one-sleep", [3400]), sleepRow("parallel-sleep", [3550])])).toMatchObject({ status: "met" });
    expect(target([sleepRow("one-sleep", [3400]), sleepRow("parallel-sleep", [3600])])?.detail).toContain("1.06×");
    expect(target([sleepRow("one-sleep", [3400]), sleepRow("parallel-sleep", [3600])])?.status).toBe("not met");
    expect(target([sleepRow("parallel-sleep", [3600])])?.status).toBe("not measured");
  });

  test("a target whose row kiln cannot run is not measured and says why", () => {
    const check = checkTargets(results([push])).find((c) => c.issue === "6" && c.target.startsWith("build + push"));
    expect(check?.status).toBe("not measured");
    expect(check?.detail).toContain("not supported yet");
  });
});

describe("results.svg", () => {
  test("draws a bar for a ratio and names the reason where there is none", () => {
    const svg = renderChart(results([cached40, push]));
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain(">1.50×<");
    expect(svg).toContain(">kiln: not supported yet<");
  });
});
