import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { findBuildLog, findStep, KEPT_BUILDS, listBuildLogs } from "../build-logs.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const logsHelp = `Usage: kiln logs [BUILD [STEP]]

Show what builds printed, in full (the live view shows only the last lines of each step).
kiln keeps every step's output of the last ${KEPT_BUILDS} builds under the state root
(with --addr, the daemon's: its builds' logs).

  kiln logs                 list the recorded builds, newest first
  kiln logs BUILD           list the steps of BUILD ("last" = the newest; an id prefix is enough)
  kiln logs BUILD STEP      print the full output of STEP: its number (as in "#3"), a digest
                            prefix, or a piece of its name
`;

/** `kiln logs`: exit 0, or 1 when the build or step is not recorded. */
export async function runLogs(argv: readonly string[], context: CommandContext): Promise<number> {
  if (argv.length > 2) throw new UsageError(`"kiln logs" takes at most 2 arguments (BUILD STEP), got ${argv.length}`);
  // A daemon's builds keep their logs under the daemon's state root.
  if (context.addr !== undefined) return (await import("../daemon/remote-command.js")).runOnDaemon(context.addr, "logs", argv, context);
  const logsDir = join(context.root, "logs");
  const [buildQuery, stepQuery] = argv;
  if (buildQuery === undefined) {
    for (const b of await listBuildLogs(logsDir)) {
      const when = new Date(b.started).toISOString();
      const took = b.finished === undefined ? "" : ` ${((b.finished - b.started) / 1000).toFixed(1)}s`;
      context.stdout(`${b.id}  ${when}  ${b.state}${took}  ${b.steps.length} steps\n`);
    }
    return 0;
  }
  const build = await findBuildLog(logsDir, buildQuery === "last" ? undefined : buildQuery);
  if (stepQuery === undefined) {
    context.stdout(`build ${build.id}: ${build.state}${build.error === undefined ? "" : `: ${build.error}`}\n`);
    for (const s of build.steps) context.stdout(`#${s.number} ${s.state.toUpperCase().padEnd(7)} ${s.name}${s.log === undefined ? "" : "  (output)"}\n`);
    return 0;
  }
  const step = findStep(build, stepQuery);
  if (step.log !== undefined) context.stdout(await readFile(join(logsDir, build.id, step.log), "utf8"));
  return 0;
}
