import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { excludingPattern, parseDockerignore, type SourceFile } from "../frontend/index.js";
import { VertexError } from "../solver/index.js";
import { isKilnError, KilnError, type Definition, type Digest, type SourceLocation } from "../solver/llb/index.js";
import { CopySourceNotFoundError } from "../worker/ops/missing-source.js";

/**
 * A COPY/ADD source that is not there, explained: BuildKit's "failed to compute cache key: not
 * found" made useful. `locations` are the instruction's and, when a .dockerignore line excluded
 * the file, that line's; `hint` says what to do.
 */
export class MissingSourceError extends KilnError {
  readonly locations: readonly SourceLocation[];
  readonly hint: string | undefined;

  constructor(message: string, options: { readonly locations: readonly SourceLocation[]; readonly hint?: string | undefined; readonly cause: unknown }) {
    super("KILN_COPY_SOURCE_NOT_FOUND", message, { cause: options.cause });
    this.locations = options.locations;
    this.hint = options.hint;
  }
}

/** What explaining a missing source may look at. */
export interface MissingSourceContext {
  readonly definition: Definition;
  /** The directories behind `local://NAME` sources. */
  readonly localDirs: Readonly<Record<string, string>>;
  /** The .dockerignore applied to the main build context (`local://context`), if any. */
  readonly dockerignore: () => Promise<SourceFile | undefined>;
}

/**
 * Turns a failed build whose cause is a copy source that does not exist into a MissingSourceError
 * saying why: excluded by which .dockerignore line (file:line, framed), not in the context (with
 * the closest existing path), or not in the stage or image copied from. Any other error is
 * returned as it is.
 */
export async function explainMissingSource(error: unknown, context: MissingSourceContext): Promise<unknown> {
  const vertex = findInChain(error, (e): e is VertexError => e instanceof VertexError);
  const missing = findInChain(error, (e): e is CopySourceNotFoundError => e instanceof CopySourceNotFoundError);
  if (vertex === undefined || missing === undefined) return error;
  const step = vertex.vertexName;
  const relative = missing.path.replace(/^\/+/u, "");
  const typoIn = (relativeTo: "context" | "tree"): string | undefined =>
    missing.suggestion === undefined ? undefined : `Did you mean "${relativeTo === "context" ? missing.suggestion.replace(/^\/+/u, "") : missing.suggestion}"?`;
  const input = missing.inputDigest === undefined ? undefined : context.definition.ops.get(missing.inputDigest as Digest);
  const local = input?.kind === "source" && input.identifier.startsWith("local://") ? input.identifier.slice("local://".length) : undefined;
  if (local === undefined) {
    const stage = missing.inputDigest === undefined ? undefined : context.definition.metadata.get(missing.inputDigest as Digest)?.description?.["kiln.stage"];
    const from = input?.kind === "source" && input.identifier.startsWith("docker-image://")
      ? `the image "${input.identifier.slice("docker-image://".length)}"`
      : stage === undefined ? "the stage it is copied from" : `stage "${stage}"`;
    return new MissingSourceError(`${step}: Cannot copy "${missing.path}": it does not exist in ${from}`, { locations: vertex.locations, hint: typoIn("tree"), cause: missing });
  }
  const dir = context.localDirs[local];
  const what = local === "context" ? "the build context" : `the build context "${local}"`;
  const onDisk = dir !== undefined && (await lstat(join(dir, relative)).then(() => true, () => false));
  if (onDisk && local === "context") {
    const ignore = await context.dockerignore();
    const pattern = ignore === undefined ? undefined : excludingPattern(parseDockerignore(ignore), relative);
    if (ignore !== undefined && pattern !== undefined) {
      const exception = `!${relative}`;
      return new MissingSourceError(
        `${step}: Cannot copy "${relative}": it is excluded from ${what} by ${ignore.name}:${pattern.line} ("${pattern.pattern}")`,
        {
          locations: [...vertex.locations, { source: ignore.toSourceInfo(), ranges: [ignore.lineRange(pattern.line)] }],
          hint: `Remove that line from ${ignore.name}, or add the exception "${exception}" after it`,
          cause: missing,
        },
      );
    }
  }
  if (onDisk) {
    return new MissingSourceError(`${step}: Cannot copy "${relative}": it was not sent with ${what} (its include or exclude patterns leave it out)`, {
      locations: vertex.locations,
      cause: missing,
    });
  }
  const where = dir === undefined ? what : `${what} (${dir})`;
  return new MissingSourceError(`${step}: Cannot copy "${relative}": it is not in ${where}`, { locations: vertex.locations, hint: typoIn("context"), cause: missing });
}

function findInChain<T>(error: unknown, is: (e: unknown) => e is T): T | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    if (is(current)) return current;
    seen.add(current);
    current = isKilnError(current) || current instanceof Error ? (current as Error).cause : undefined;
  }
  return undefined;
}
