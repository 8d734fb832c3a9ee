import { parseArgs } from "node:util";
import type { PrunePolicy } from "../../solver/index.js";
import type { Engine } from "../api.js";
import { collectGarbage, pruneBuildCache, type PruneReport } from "../cache/cache-gc.js";
import { formatSize, parseCacheFilters, parseDuration, parseSize } from "../options/cache-options.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const pruneHelp = `Usage: kiln prune [OPTIONS]

Remove build cache records and the snapshots no remaining record needs. Snapshots that other
snapshots still build on stay until those go too.

With no option, every record is removed except base images (type source.docker-image), which
take a pull to get back; --all removes those too. With --addr, prunes the daemon's build cache
(as buildctl prune does).

Options:
      --auto                 Run the default garbage collection if it is due (its last run is over an
                             hour old), as builds start it when they finish; takes no other option
  -a, --all                  Remove base-image records too
      --keep-duration DUR    Keep records used within DUR (e.g. 24h, 7d); remove older ones
      --keep-storage SIZE    Then remove least recently used records until the cache is at most SIZE (e.g. 5GB)
      --filter K=V           Only records matching: type=, id=, description=, shared=true|false, until=DURATION
`;

/** `kiln prune`: exit 0. */
export async function runPrune(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  // Through a daemon: its state root, not this machine's local one.
  if (context.addr !== undefined) return (await import("../daemon/remote-command.js")).runOnDaemon(context.addr, "prune", argv, context);
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        auto: { type: "boolean" },
        all: { type: "boolean", short: "a" },
        "keep-duration": { type: "string" },
        "keep-storage": { type: "string" },
        filter: { type: "string", multiple: true },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.auto === true) {
    if (values.all === true || values.filter !== undefined || values["keep-duration"] !== undefined || values["keep-storage"] !== undefined) {
      throw new UsageError("--auto applies the default policy and takes no other option");
    }
    return runAutoGc(context, openEngine);
  }
  const now = Date.now();
  const filter = parseCacheFilters(values.filter ?? [], now);
  const keepDuration = values["keep-duration"] === undefined ? undefined : parseDuration(values["keep-duration"], "--keep-duration");
  const keepStorage = values["keep-storage"] === undefined ? undefined : parseSize(values["keep-storage"], "--keep-storage");
  const all = values.all === true;
  const policy: PrunePolicy = {
    now,
    // No limit given: remove everything the filter admits.
    ...(keepDuration === undefined && keepStorage === undefined ? { all: true } : {}),
    ...(keepDuration === undefined ? {} : { keepDuration }),
    ...(keepStorage === undefined ? {} : { keepStorage }),
    filter: (u) => (all || u.record.type !== "source.docker-image") && filter(u),
  };
  const engine = await openEngine();
  try {
    printReport(await pruneBuildCache(engine.cache, engine.worker, policy), context);
    return 0;
  } finally {
    await engine.close();
  }
}

/** `kiln prune --auto`: the default garbage collection (cli/cache/cache-gc.ts), when it is due. */
async function runAutoGc(context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  const engine = await openEngine();
  try {
    const report = await collectGarbage(engine.root, engine.cache, engine.worker);
    if (report === undefined) context.stdout("Not due: the last garbage collection ran less than an hour ago\n");
    else printReport(report, context);
    return 0;
  } finally {
    await engine.close();
  }
}

function printReport(report: PruneReport, context: CommandContext): void {
  for (const u of report.deleted) context.stdout(`${u.key.slice("sha256:".length, "sha256:".length + 12)}  ${formatSize(u.size).padStart(8)}  ${u.record.vertexName ?? ""}\n`);
  context.stdout(`Removed ${report.deleted.length} record${report.deleted.length === 1 ? "" : "s"} and ${report.snapshots.length} snapshot${report.snapshots.length === 1 ? "" : "s"}; total reclaimed: ${formatSize(report.freedBytes)}\n`);
}
