import type { Definition, Digest, OpMetadata } from "../../solver/llb/index.js";

/** The description key the frontend tags each Dockerfile step's vertex with: its stage's name, or index when unnamed. */
export const STAGE_DESCRIPTION_KEY = "kiln.stage";

/**
 * `--no-cache-filter STAGE…`: the Definition with `ignoreCache` set on every vertex of the named
 * stages (matched as BuildKit does, by name without regard to case; an unnamed stage by its
 * index). Metadata is not part of any digest, so the graph and its keys stay the same: the
 * marked steps run again, and what follows them keeps its keys (their results are rebuilt).
 */
export function withNoCacheFilter(definition: Definition, stages: readonly string[]): Definition {
  if (stages.length === 0) return definition;
  const wanted = new Set(stages.map((s) => s.toLowerCase()));
  const metadata = new Map<Digest, OpMetadata>(definition.metadata);
  for (const [digest, meta] of definition.metadata) {
    const stage = meta.description?.[STAGE_DESCRIPTION_KEY];
    if (stage !== undefined && wanted.has(stage.toLowerCase())) metadata.set(digest, { ...meta, ignoreCache: true });
  }
  return { ...definition, metadata };
}
