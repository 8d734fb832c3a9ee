import type { Definition, ImageMetadata, ImageSpec, Platform, SourceRange } from "../../solver/llb/index.js";
import type { NamedContext } from "../named-contexts.js";
import type { SourceFile } from "../source-file.js";

/**
 * Resolves an image reference for a platform to a pinned reference and its config. The frontend's
 * only outside call: the cli backs it with the worker's registry client.
 */
export type ImageResolver = (
  ref: string,
  options: { readonly platform: Platform; readonly signal?: AbortSignal },
) => Promise<{ readonly ref: string; readonly config: ImageSpec }>;

/** What lowering needs besides the Dockerfile. */
export interface LowerOptions {
  /** Stage name or index; default: the last stage. */
  readonly target?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** The platform the image is built for. */
  readonly platform: Platform;
  /** The platform the build runs on. */
  readonly buildPlatform: Platform;
  readonly resolveImage: ImageResolver;
  /** The local source name of the build context; default "context". */
  readonly contextName?: string;
  /**
   * Named build contexts (`--build-context NAME=…`) by name: a FROM image, stage name or `--from`
   * value with that name (compared in familiar image form) resolves to the context instead.
   */
  readonly namedContexts?: Readonly<Record<string, NamedContext>>;
  /** The .dockerignore of the context, if it has one. */
  readonly dockerignore?: SourceFile;
  readonly signal?: AbortSignal;
  /**
   * "apply" (default): with `# check=error=true` a finding fails lowering (KILN_CHECK_FAILED);
   * "report": it does not, and `checkFailed` says so (`kiln build --check`).
   */
  readonly checks?: "apply" | "report";
}

/**
 * A build check finding (BuildKit's rule names), with where it applies; or, without `rule`, a
 * plain build warning that `# check=` does not govern (build args nothing consumed).
 */
export interface BuildWarning {
  readonly rule?: string;
  readonly message: string;
  readonly ranges: readonly SourceRange[];
  readonly url?: string;
}

/** The lowered build: the op graph whose head is the target stage, and the image metadata. */
export interface LoweredBuild {
  readonly definition: Definition;
  readonly image: ImageMetadata;
  readonly warnings: readonly BuildWarning[];
  /** The findings are errors (`# check=error=true`) and there are some: only in "report" mode. */
  readonly checkFailed?: boolean;
  /**
   * SOURCE_DATE_EPOCH in seconds, from `--build-arg SOURCE_DATE_EPOCH=N` or a global ARG's
   * non-empty default (as BuildKit reads it), for the exporter's reproducible times. Absent when
   * unset or not a whole number.
   */
  readonly sourceDateEpoch?: number;
}
