import { ratio, scenarioText, type BenchResults } from "./results.js";

/**
 * bench/results.svg: one horizontal bar per row, kiln's median time over BuildKit's, on a linear
 * axis with a line at 1 (left of it kiln is faster). Rows without a ratio say why in place of a
 * bar. Hand-written SVG, no chart library.
 */
export function renderChart(results: BenchResults): string {
  const plotWidth = 360;
  const rowHeight = 24;
  const top = 40;
  const rows = results.rows.map((row) => ({ label: `${row.title}: ${scenarioText(row.scenario)}`, value: ratio(row, "buildkit"), why: reason(row.cells.kiln?.note, row.cells.buildkit?.note) }));
  // About 6.6 px per character of 12 px sans-serif: room for the longest label.
  const labelWidth = Math.max(200, Math.ceil(Math.max(0, ...rows.map((r) => r.label.length)) * 6.6) + 16);
  const maxValue = Math.min(6, Math.max(2, ...rows.map((r) => r.value ?? 0)));
  const x = (v: number): number => labelWidth + (Math.min(v, maxValue) / maxValue) * plotWidth;
  const height = top + rows.length * rowHeight + 30;
  const width = labelWidth + plotWidth + 70;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">kiln time / BuildKit time (median, ${results.mode} run; &lt; 1 = kiln faster)</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    parts.push(`<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escapeXml(r.label)}</text>`);
    if (r.value === undefined) {
      parts.push(`<text x="${labelWidth + 6}" y="${y + 15}" fill="#777">${escapeXml(r.why)}</text>`);
      return;
    }
    const color = r.value <= 1 ? "#2e8b57" : "#d2691e";
    parts.push(`<rect x="${labelWidth}" y="${y + 4}" width="${(x(r.value) - labelWidth).toFixed(1)}" height="${rowHeight - 8}" fill="${color}"/>`);
    const clipped = r.value > maxValue ? "+" : "";
    parts.push(`<text x="${(x(r.value) + 4).toFixed(1)}" y="${y + 15}">${r.value.toFixed(2)}×${clipped}</text>`);
  });
  const axisY = top + rows.length * rowHeight;
  parts.push(`<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${axisY}" stroke="#333" stroke-dasharray="4 3"/>`);
  parts.push(`<line x1="${labelWidth}" y1="${axisY}" x2="${labelWidth + plotWidth}" y2="${axisY}" stroke="#333"/>`);
  for (let v = 0; v <= maxValue; v++) {
    parts.push(`<text x="${x(v)}" y="${axisY + 16}" text-anchor="middle">${v}×</text>`);
  }
  parts.push("</svg>", "");
  return parts.join("\n");
}

function reason(kiln: { kind: string; reason: string } | undefined, buildkit: { kind: string; reason: string } | undefined): string {
  if (kiln !== undefined) return kiln.kind === "unsupported" ? "kiln: not supported yet" : kiln.kind === "skipped" ? "kiln: not run" : "kiln: failed";
  if (buildkit !== undefined) return buildkit.kind === "skipped" ? "BuildKit: not run" : "BuildKit: failed";
  return "no ratio";
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
