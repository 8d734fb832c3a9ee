import type { BuilderId } from "./builders.js";
import { ratio, scenarioText, type BenchResults, type CellResult } from "./results.js";
import { formatSummary, summarize } from "./stats.js";
import { checkTargets, type TargetCheck } from "./targets.js";

const BUILDERS: readonly { readonly id: BuilderId; readonly name: string }[] = [
  { id: "kiln", name: "kiln" },
  { id: "buildkit", name: "BuildKit" },
  { id: "buildah", name: "buildah" },
];

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\s+/g, " ").slice(0, 160);
}

/** The run.sh flags that repeat this run's mode and repetitions (5 full, 1 quick by default). */
function reproduceFlags(results: BenchResults): string {
  const quick = results.mode === "quick";
  return `${quick ? " --quick" : ""}${results.reps === (quick ? 1 : 5) ? "" : ` --reps ${results.reps}`}`;
}

function cellText(id: BuilderId, cell: CellResult | undefined): string {
  if (cell === undefined) return "not run";
  if (cell.note !== undefined) {
    const who = id === "kiln" ? "kiln: " : "";
    if (cell.note.kind === "skipped") return `not run (${escapeCell(cell.note.reason)})`;
    return cell.note.kind === "unsupported" ? `${who}not supported yet (${escapeCell(cell.note.reason)})` : `failed (${escapeCell(cell.note.reason)})`;
  }
  const summary = summarize(cell.samples);
  return summary === undefined ? "no samples" : formatSummary(summary);
}

function ratioText(value: number | undefined): string {
  return value === undefined ? "–" : `${value.toFixed(2)}×`;
}

function rssText(cell: CellResult | undefined): string {
  const summary = summarize(cell?.peakRssKiB ?? []);
  return summary === undefined ? "–" : `${Math.round(summary.max / 1024)} MiB`;
}

function targetLine(check: TargetCheck): string {
  const mark = check.status === "met" ? "**met**" : check.status === "not met" ? "**not met**" : "not measured";
  return `| ${check.issue} | ${escapeCell(check.target)} | ${mark} | ${escapeCell(check.detail)} |`;
}

/** bench/RESULTS.md: how it was measured, the table, the targets of the other issues, the machine. */
export function renderResults(results: BenchResults): string {
  const m = results.machine;
  const node = summarize(results.reference.nodeStartMs);
  const kilnVersion = summarize(results.reference.kilnVersionMs);
  const lines = [
    "# kiln against BuildKit and buildah",
    "",
    `Run of ${results.date.slice(0, 16).replace("T", " ")} UTC, mode **${results.mode}** (${results.reps} repetition${results.reps === 1 ? "" : "s"} per row, ${results.durationS} s in all). ` +
      `Reproduce with \`bash bench/run.sh${reproduceFlags(results)}\` (as root, Debian 12; it sets up what is missing first). ` +
      "Times are wall-clock medians with min–max over the repetitions; the builders alternate within each repetition. " +
      "`kiln/BuildKit` below 1 means kiln is faster.",
    "",
    `> **Noise.** The machine (${m.cores} cores) was shared with other work while this ran (1-minute load ${m.loadAtStart} at the start): ` +
      "absolute times are noisy; the ratios of interleaved runs are the numbers to read." +
      (results.mode === "quick" ? " Quick mode uses smaller contexts and a single repetition, so it shows direction more than precise ratios." : ""),
    "",
    "| workload | scenario | kiln | BuildKit | buildah | kiln/BuildKit | kiln/buildah | kiln peak RSS |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.rows.map((row) => {
      const cells = BUILDERS.map((b) => cellText(b.id, row.cells[b.id]));
      return `| ${row.title} | ${scenarioText(row.scenario)} | ${cells.join(" | ")} | ${ratioText(ratio(row, "buildkit"))} | ${ratioText(ratio(row, "buildah"))} | ${rssText(row.cells.kiln)} |`;
    }),
    "",
    "![kiln's time over BuildKit's per row](results.svg)",
    "",
    "Reference: `node -e 0` " + (node === undefined ? "–" : formatSummary(node)) + ", `kiln --version` " + (kilnVersion === undefined ? "–" : formatSummary(kilnVersion)) + " (start-up cost inside every kiln row).",
    "",
    "## Targets from the other issues",
    "",
    ...(results.mode === "quick" || results.reps < 3
      ? ["Each status below rests on " + (results.reps === 1 ? "a single sample" : `${results.reps} samples`) + " per builder" + (results.mode === "quick" ? " and the smaller quick data" : "") + ": treat it as provisional, especially ratios near the limit.", ""]
      : []),
    "| issue | target | status | measured |",
    "| --- | --- | --- | --- |",
    ...checkTargets(results).map(targetLine),
    "",
    "## How each builder is driven",
    "",
    "- **kiln**: `bin/kiln --root R build --progress plain -t bench/W:latest` (its local image store); a cold run starts from an empty `--root` with the bases stored by `kiln import`. Peak RSS is GNU time's maximum resident set of kiln's process tree.",
    "- **BuildKit**: docker.io's dockerd (own data root and socket, `--bridge=none --iptables=false`), `DOCKER_BUILDKIT=1 docker build --network host -t bench/W`; bases are `docker import`ed and resolve from docker's image store; cold runs follow `docker builder prune -af`. It has no OCI exporter, so the export row is `docker build` + `docker save`.",
    "- **buildah**: `buildah bud --layers --pull-never --network host` with its own storage root (overlay), removed for cold runs and re-seeded with `buildah from scratch` + `add` + `commit`; export is `buildah push oci-archive:`. buildah runs stages one after another by default (`--jobs 1`), and that default is what is measured.",
    "- The apt workload reaches the machine's Debian mirror through a loopback forwarder started by the harness, so no file names the mirror; its times depend on the mirror too.",
    "",
    "## Machine",
    "",
    `- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memoryGiB} GiB; kernel ${m.kernel}; ${m.os}; Node ${m.node}`,
    ...BUILDERS.map((b) => `- ${b.name}: ${results.versions[b.id] ?? "not run"}`),
    "",
  ];
  return lines.join("\n");
}

