import { isKilnError, KilnError, type SourceRange } from "../solver/llb/index.js";
import type { SourceFile } from "./source-file.js";

/**
 * A problem with a Dockerfile: what went wrong (`code`, message), where (`ranges` in `source`),
 * and optionally how to fix it (`hint`). The cli renders it as a code frame.
 */
export class FrontendError extends KilnError {
  readonly ranges: readonly SourceRange[];
  readonly source: SourceFile | undefined;
  readonly hint?: string;

  constructor(
    code: string,
    message: string,
    options: { readonly ranges?: readonly SourceRange[]; readonly source?: SourceFile; readonly hint?: string; readonly cause?: unknown } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.ranges = options.ranges ?? [];
    this.source = options.source;
    if (options.hint !== undefined) this.hint = options.hint;
  }
}

/**
 * Adds `range` (of `source`) to an error. A FrontendError gets the range appended (after
 * BuildKit's location helper: inner code says where first, outer code adds context); any other
 * kiln error becomes a FrontendError with the same code, message and `cause`; anything else
 * becomes KILN_FRONTEND_INTERNAL.
 */
export function withRange(error: unknown, range: SourceRange | readonly SourceRange[], source: SourceFile): FrontendError {
  const added = Array.isArray(range) ? (range as readonly SourceRange[]) : [range as SourceRange];
  if (error instanceof FrontendError) {
    const options = {
      ranges: [...error.ranges, ...added],
      source: error.source ?? source,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      ...(error.cause === undefined ? {} : { cause: error.cause }),
    };
    const copy = new FrontendError(error.code, error.message, options);
    return copy;
  }
  if (isKilnError(error)) return new FrontendError(error.code, error.message, { ranges: added, source, cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new FrontendError("KILN_FRONTEND_INTERNAL", message, { ranges: added, source, cause: error });
}
