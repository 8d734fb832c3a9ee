import { createPathMatcher, type FileOp } from "./llb/index.js";

/**
 * Which paths of input `index` the copy actions of a file op read, as a predicate over
 * slash-separated paths relative to the input's root (the form `CacheMapExplain.paths` uses):
 * a path is read when a copy source (wildcards included) names it or one of its parent
 * directories. Undefined when no copy reads that input, or when one copies the whole root.
 * Used to narrow "files changed" in the input to those a COPY selects; an approximation that
 * may keep a path the copy's `--exclude` drops, never drops a path the copy reads.
 */
export function copySelector(op: FileOp, index: number): ((path: string) => boolean) | undefined {
  const sources: string[] = [];
  for (const action of op.actions) {
    if (action.kind !== "copy" || action.source !== index) continue;
    const src = action.src.replace(/^\/+/, "").replace(/^(\.\/)+/, "").replace(/\/+$/, "");
    if (src === "" || src === ".") return undefined;
    sources.push(action.allowWildcard ? src : escapePattern(src));
  }
  if (sources.length === 0) return undefined;
  let matcher: ReturnType<typeof createPathMatcher>;
  try {
    matcher = createPathMatcher(sources);
  } catch {
    return undefined;
  }
  return (path) => matcher.excludes(path);
}

function escapePattern(path: string): string {
  return path.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}
