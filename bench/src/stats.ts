/** Median, minimum and maximum of a non-empty sample; the median of an even count is the mean of the middle two. */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): Summary | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n: sorted.length, median, min: sorted[0]!, max: sorted.at(-1)! };
}

/** Seconds with two decimals below 10 s and one above: "0.42 s", "12.3 s". */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
}

/** "1.23 s (1.10–1.40)", or "1.23 s" for a single run. */
export function formatSummary(summary: Summary): string {
  const median = formatSeconds(summary.median);
  if (summary.n === 1) return median;
  return `${median} (${formatSeconds(summary.min).replace(" s", "")}–${formatSeconds(summary.max)})`;
}
