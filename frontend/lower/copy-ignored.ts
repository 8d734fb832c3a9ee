import { cleanPath, type PathMatcher, type SourceRange } from "../../solver/llb/index.js";
import { ruleUrl } from "../checks.js";
import type { LowerContext } from "./context.js";

/** The build context's .dockerignore, compiled, as the CopyIgnoredFile check reads it. */
export interface IgnoreRules {
  readonly matcher: PathMatcher;
  /** The patterns as written (cleaned), exceptions with their "!". */
  readonly patterns: readonly string[];
}

/**
 * BuildKit's CopyIgnoredFile (an experimental rule: applyChecks drops it unless the Dockerfile
 * enables it with `# check=experimental=CopyIgnoredFile` or `experimental=all`): a COPY or ADD
 * source from the build context that .dockerignore excludes, itself or through a parent
 * directory. Not checked when the .dockerignore has exceptions ("!…"), since a file inside an
 * excluded directory may be let back in. "." and "/" name the whole context: they are reported
 * only when a pattern excludes everything (`*`, `**`, `**` + `/*`). Unlike BuildKit, a leading
 * "/" is dropped first, since `COPY /a` and `COPY a` read the same file.
 */
export function warnIgnoredSource(ctx: LowerContext, keyword: "COPY" | "ADD", src: string, range: SourceRange): void {
  const rules = ctx.dockerignore;
  if (rules === undefined || rules.matcher.hasExceptions) return;
  const clean = cleanPath(src);
  const relative = clean === "/" ? "." : clean.replace(/^\/+/u, "");
  if (relative === "." && !rules.patterns.some((p) => p === "*" || p === "**" || p === "**/*")) return;
  if (relative !== "." && !rules.matcher.excludes(relative)) return;
  ctx.warn({
    rule: "CopyIgnoredFile",
    message: `Attempting to ${keyword === "COPY" ? "Copy" : "Add"} file "${clean}" that is excluded by .dockerignore`,
    ranges: [range],
    url: ruleUrl("CopyIgnoredFile"),
  });
}
