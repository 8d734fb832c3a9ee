import { parseArgs } from "node:util";
import type { CacheUsage } from "../../solver/index.js";
import type { Engine } from "../api.js";
import { cacheUsage } from "../cache/cache-gc.js";
import { formatAgo, formatSize, parseCacheFilters } from "../options/cache-options.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const duHelp = `Usage: kiln du [OPTIONS]

Show what the build cache holds: one row per cache record, most recently used first, with the
disk its snapshots use (shared snapshots are counted in each record that names them; the total
counts them once). With --addr, shows the daemon's build cache (as buildctl du does).

Options:
  -v, --verbose        One block per record: key, type, size, times, results, step
      --filter K=V     Only records matching: type=, id=, description=, shared=true|false, until=DURATION
      --format FORMAT  table (default) or json
`;

/** `kiln du`: exit 0. */
export async function runDu(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  // Through a daemon: its state root, not this machine's local one.
  if (context.addr !== undefined) return (await import("../daemon/remote-command.js")).runOnDaemon(context.addr, "du", argv, context);
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: { verbose: { type: "boolean", short: "v" }, filter: { type: "string", multiple: true }, format: { type: "string" } },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const format = values.format ?? "table";
  if (format !== "table" && format !== "json") throw new UsageError(`Cannot use --format "${format}": choose table or json`);
  const filter = parseCacheFilters(values.filter ?? []);
  const engine = await openEngine();
  try {
    const usage = (await cacheUsage(engine.cache, engine.worker)).filter(filter);
    if (format === "json") {
      context.stdout(`${JSON.stringify(usage.map(toJson), null, 2)}\n`);
      return 0;
    }
    if (values.verbose === true) for (const u of usage) context.stdout(verboseBlock(u));
    else printTable(usage, context);
    context.stdout(`Total:\t${formatSize(totalSize(usage))}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

function toJson(u: CacheUsage): Record<string, unknown> {
  return {
    id: u.key,
    type: u.record.type ?? "unknown",
    size: u.size,
    shared: u.shared,
    created: new Date(u.record.created).toISOString(),
    lastUsed: new Date(u.record.lastUsed).toISOString(),
    description: u.record.vertexName ?? "",
    results: u.record.results.map((r) => r.id),
    ...(u.record.canonicalKey === undefined ? {} : { canonicalKey: u.record.canonicalKey }),
  };
}

function printTable(usage: readonly CacheUsage[], context: CommandContext): void {
  const rows = [["ID", "TYPE", "SIZE", "LAST USED", "SHARED", "DESCRIPTION"]];
  for (const u of usage) {
    const name = u.record.vertexName ?? "";
    rows.push([
      u.key.slice("sha256:".length, "sha256:".length + 12),
      u.record.canonicalKey === undefined ? (u.record.type ?? "unknown") : `${u.record.type ?? "unknown"} (alias)`,
      formatSize(u.size),
      formatAgo(u.record.lastUsed),
      u.shared ? "yes" : "no",
      name.length > 60 ? `${name.slice(0, 57)}...` : name,
    ]);
  }
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const row of rows) context.stdout(`${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()}\n`);
}

function verboseBlock(u: CacheUsage): string {
  return [
    `ID:\t\t${u.key}`,
    `Type:\t\t${u.record.type ?? "unknown"}`,
    `Size:\t\t${formatSize(u.size)}`,
    `Created at:\t${new Date(u.record.created).toISOString()}`,
    `Last used:\t${formatAgo(u.record.lastUsed)}`,
    `Shared:\t\t${u.shared}`,
    `Description:\t${u.record.vertexName ?? ""}`,
    `Results:\t${u.record.results.map((r) => r.id).join(", ")}`,
    ...(u.record.canonicalKey === undefined ? [] : [`Alias of:\t${u.record.canonicalKey}`]),
    "",
    "",
  ].join("\n");
}

/** Bytes the listed records use, each result counted once (record files plus distinct snapshots). */
function totalSize(usage: readonly CacheUsage[]): number {
  // CacheUsage.size already adds the results' sizes per record; subtract repeats of shared results.
  const perResult = new Map<string, number>();
  let total = 0;
  for (const u of usage) {
    const share = u.record.results.length === 0 ? 0 : u.size / u.record.results.length;
    let own = u.size;
    for (const ref of u.record.results) {
      if (perResult.has(ref.id)) own -= share;
      else perResult.set(ref.id, share);
    }
    total += own;
  }
  return Math.round(total);
}
