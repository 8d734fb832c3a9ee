import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * In-process parse + lowering time of a Dockerfile through kiln's public frontend entry
 * (`kiln/frontend`, i.e. dist/frontend/index.js): what issue 3's "under 50 ms" target is about,
 * without Node's start-up or the solver. The first call warms the JIT and is discarded.
 *
 * The frontend is loaded by URL and used through the small structural view below, so the harness
 * keeps treating kiln as a black box and compiles without kiln's declarations.
 */
interface FrontendView {
  createSourceFile(name: string, text: string): unknown;
  parseDockerfile(source: unknown): unknown;
  lowerDockerfile(dockerfile: unknown, options: unknown): Promise<unknown>;
}

function isFrontendView(value: unknown): value is FrontendView {
  const v = value as Partial<Record<keyof FrontendView, unknown>>;
  return typeof v.createSourceFile === "function" && typeof v.parseDockerfile === "function" && typeof v.lowerDockerfile === "function";
}

/** Milliseconds per parse + lower, and of that the parse alone, one sample per run after a warm-up. */
export interface ParseLowerTimes {
  readonly totalMs: number[];
  readonly parseMs: number[];
}

/** Times `runs` parse + lower passes; throws when the entry is missing or changed shape. */
export async function parseAndLowerTimes(repo: string, dockerfilePath: string, runs: number): Promise<ParseLowerTimes> {
  const frontend: unknown = await import(pathToFileURL(join(repo, "dist", "frontend", "index.js")).href);
  if (!isFrontendView(frontend)) throw new Error("kiln/frontend does not export createSourceFile, parseDockerfile and lowerDockerfile");
  const text = readFileSync(dockerfilePath, "utf8");
  const platform = { os: "linux", architecture: "amd64" };
  const options = {
    platform,
    buildPlatform: platform,
    resolveImage: (ref: string) =>
      Promise.resolve({ ref, config: { architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [] } } }),
  };
  const once = async (): Promise<{ total: number; parse: number }> => {
    const started = process.hrtime.bigint();
    const parsed = frontend.parseDockerfile(frontend.createSourceFile("Dockerfile", text));
    const parsedAt = process.hrtime.bigint();
    await frontend.lowerDockerfile(parsed, options);
    const done = process.hrtime.bigint();
    return { total: Number(done - started) / 1e6, parse: Number(parsedAt - started) / 1e6 };
  };
  await once();
  const times: ParseLowerTimes = { totalMs: [], parseMs: [] };
  for (let i = 0; i < runs; i++) {
    const sample = await once();
    times.totalMs.push(sample.total);
    times.parseMs.push(sample.parse);
  }
  return times;
}
