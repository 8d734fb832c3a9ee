import type { ImageSpec, Output, Platform, ProxyEnv, SourceInfo, Tree } from "../../solver/llb/index.js";
import type { ShellWords } from "../shell-words.js";
import type { SourceFile } from "../source-file.js";
import type { IgnoreRules } from "./copy-ignored.js";
import type { BuildWarning } from "./options.js";

/** An image resolved before lowering: the pinned reference and its config. */
export interface ResolvedImage {
  readonly ref: string;
  readonly spec: ImageSpec;
}

/** What every lowering step may read: the Dockerfile, the expander, global args, lowered stages. */
export interface LowerContext {
  /** The stage being lowered: its name, or its index when unnamed (tags its vertices as `kiln.stage`). */
  readonly stage?: string;
  readonly source: SourceFile;
  readonly info: SourceInfo;
  readonly shell: ShellWords;
  readonly escapeToken: string;
  readonly globalScope: ReadonlyMap<string, string>;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly targetPlatform: Platform;
  /** The build context as a local source (one op shared by every COPY/ADD). */
  readonly contextTree: () => Output;
  /** The final tree of an already lowered stage. */
  readonly stageTree: (index: number) => Tree | undefined;
  /** The tree a `--from`/`from=` names: a lowered stage (by name or index) or a pre-resolved image. */
  readonly mountSource: (from: string, platform: Platform) => Output;
  /** A pre-resolved image by expanded reference and platform. */
  readonly image: (ref: string, platform: Platform) => ResolvedImage | undefined;
  readonly warn: (warning: BuildWarning) => void;
  /** Proxy settings from the build args, for every RUN (kept out of history and cache keys). */
  readonly proxyEnv?: ProxyEnv;
  /** The context's .dockerignore, when it has patterns (for CopyIgnoredFile). */
  readonly dockerignore?: IgnoreRules;
}

/** The key pre-resolved images are stored under. */
export function imageKey(ref: string, platform: Platform): string {
  return `${ref}|${platform.os}/${platform.architecture}/${platform.variant ?? ""}`;
}
