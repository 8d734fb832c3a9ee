import {
  addInlineCache, collectCache, openImportedCache, writeCache, type CacheExportSpec, type CacheImportSpec,
} from "../../exporter/cache/index.js";
import type { BuiltImage } from "../../exporter/index.js";
import {
  exportCacheManifest, reportVertex, selectCacheExport, type CacheRecord, type CacheSource, type CacheStore, type ProgressSink, type SolvedVertex,
} from "../../solver/index.js";
import { assertNever, sha256, type Definition, type Digest, type Platform } from "../../solver/llb/index.js";
import type { Worker } from "../../worker/index.js";

/** One solve of a build (one per platform): what cache export chooses records from. */
export interface SolvedBuild {
  readonly definition: Definition;
  readonly vertices: readonly SolvedVertex[];
}

/**
 * Opens every `--cache-from` cache of a build as a solver cache source (each reported as a step
 * `importing cache from …`), restoring the cache mounts they carry. A missing or unreadable cache
 * fails the build with a CacheImportError naming it. Blob problems found later are warnings.
 */
export async function openCacheSources(
  worker: Worker,
  imports: readonly CacheImportSpec[],
  platform: Platform,
  sink: ProgressSink,
  signal: AbortSignal,
): Promise<CacheSource[]> {
  const sources: CacheSource[] = [];
  for (const spec of imports) {
    const where = describeImport(spec);
    const imported = await reportVertex(sink, sha256(`kiln:cache:import:${where}`), `importing cache from ${where}`, () =>
      openImportedCache(spec, {
        stateRoot: worker.root,
        content: worker.content,
        snapshotter: worker.snapshotter,
        registry: worker.registry,
        platform,
        signal,
        onWarning: (message) => sink({ type: "warning", message, locations: [], time: Date.now() }),
      }),
    );
    sources.push({
      // The exporter repeats the record's shape structurally; keyInputs is carried as written.
      load: async (key) => (await imported.load(key)) as CacheRecord | undefined,
      materialize: (key, record, materializeSignal) => imported.materialize(key, record, materializeSignal),
    });
  }
  return sources;
}

/** The records a cache export of `mode` takes from a build's solves (every platform's). */
async function chosenRecords(store: CacheStore, solves: readonly SolvedBuild[], mode: "min" | "max"): Promise<{ key: Digest; record: CacheRecord }[]> {
  const keys = solves.flatMap((s) => selectCacheExport(s.vertices, s.definition.head?.digest ?? null, mode));
  return [...(await exportCacheManifest(store, keys)).records];
}

/** The ids of every `RUN --mount=type=cache` in the build. */
function cacheMountIds(solves: readonly SolvedBuild[]): string[] {
  const ids = new Set<string>();
  for (const { definition } of solves) {
    for (const op of definition.ops.values()) {
      if (op.kind !== "exec") continue;
      for (const mount of op.mounts) if (mount.type === "cache") ids.add(mount.id);
    }
  }
  return [...ids];
}

/**
 * The image exporter's hook for `--cache-to type=inline`: embeds the min-mode cache of the
 * platform's solve in its image config. Undefined when no inline export was asked for.
 */
export function inlineCacheHook(
  worker: Worker,
  store: CacheStore,
  exports: readonly CacheExportSpec[],
  solves: readonly SolvedBuild[],
): ((image: BuiltImage, platformIndex: number) => Promise<BuiltImage>) | undefined {
  if (!exports.some((spec) => spec.kind === "inline")) return undefined;
  return async (image, platformIndex) => {
    const solve = solves[platformIndex];
    if (solve === undefined) return image;
    const records = await chosenRecords(store, [solve], "min");
    const cache = await collectCache({ content: worker.content, snapshotter: worker.snapshotter, records });
    return addInlineCache(image, worker.content, cache);
  };
}

/** Writes the build's cache to every local and registry `--cache-to` (each a reported step). */
export async function exportBuildCache(
  worker: Worker,
  store: CacheStore,
  exports: readonly CacheExportSpec[],
  solves: readonly SolvedBuild[],
  sink: ProgressSink,
  signal: AbortSignal,
): Promise<void> {
  for (const spec of exports) {
    if (spec.kind === "inline") continue;
    const where = spec.kind === "local" ? spec.dest : spec.ref;
    await reportVertex(sink, sha256(`kiln:cache:export:${spec.kind}:${where}`), `exporting cache to ${spec.kind === "local" ? "directory" : "registry"} ${where}`, async (progress) => {
      const written = await writeCache(spec, {
        stateRoot: worker.root,
        content: worker.content,
        snapshotter: worker.snapshotter,
        registry: worker.registry,
        records: await chosenRecords(store, solves, spec.mode),
        cacheMountIds: cacheMountIds(solves),
        signal,
        onBlob: (descriptor, outcome) => progress.log("stderr", `${outcome} ${descriptor.digest}\n`),
      });
      progress.log("stderr", `cache manifest ${written.manifest.digest}: ${written.records} records, ${written.mounts} cache mounts (mode=${spec.mode})\n`);
    });
  }
}

function describeImport(spec: CacheImportSpec): string {
  switch (spec.kind) {
    case "local":
      return spec.src;
    case "registry":
      return spec.ref;
    default:
      return assertNever(spec, "cache import");
  }
}
