import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultPlatform, parsePlatform, type Platform } from "../../solver/llb/index.js";
import { parseOutput, type OutputSpec } from "./output.js";
import { UsageError } from "./usage-error.js";

/** How progress is shown. */
export type ProgressMode = "auto" | "tty" | "plain" | "rawjson" | "quiet";

/** What a caller asks for: the user-facing build options (the API's and the CLI's). */
export interface BuildOptions {
  /** The build context directory. */
  readonly context: string;
  /** The Dockerfile; default `Dockerfile` in the context. Relative paths are taken from the working directory. */
  readonly file?: string;
  readonly target?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** `os/arch[/variant]`; default this machine's. */
  readonly platform?: string;
  readonly outputs?: readonly string[];
  /** Image names (`-t`): stored in kiln's local image store. */
  readonly tags?: readonly string[];
  readonly noCache?: boolean;
  /** Always resolve base images from their registry, never from the local store. */
  readonly pull?: boolean;
}

/** BuildOptions validated once, with every default filled in. Inner code only sees this. */
export interface BuildRequest {
  readonly contextDir: string;
  readonly dockerfile: string;
  readonly target: string | undefined;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly platform: Platform;
  readonly outputs: readonly OutputSpec[];
  readonly tags: readonly string[];
  readonly noCache: boolean;
  readonly pull: boolean;
}

/** Validates options and fills defaults; throws UsageError naming what is wrong. */
export function resolveBuildOptions(options: BuildOptions, cwd = process.cwd()): BuildRequest {
  const contextDir = resolve(cwd, options.context);
  const dockerfile = options.file === undefined ? join(contextDir, "Dockerfile") : isAbsolute(options.file) ? options.file : resolve(cwd, options.file);
  let platform: Platform;
  try {
    platform = options.platform === undefined ? defaultPlatform() : parsePlatform(options.platform);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  return {
    contextDir,
    dockerfile,
    target: options.target,
    buildArgs: options.buildArgs ?? {},
    platform,
    outputs: (options.outputs ?? []).map(parseOutput),
    tags: options.tags ?? [],
    noCache: options.noCache ?? false,
    pull: options.pull ?? false,
  };
}

/** `kiln build` flags, docker build's names. */
export interface ParsedBuildCommand {
  readonly options: BuildOptions;
  readonly progress: ProgressMode;
}

/** Parses `kiln build [flags] CONTEXT`. */
export function parseBuildArgs(argv: readonly string[]): ParsedBuildCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        file: { type: "string", short: "f" },
        tag: { type: "string", short: "t", multiple: true },
        target: { type: "string" },
        "build-arg": { type: "string", multiple: true },
        platform: { type: "string" },
        output: { type: "string", short: "o", multiple: true },
        "no-cache": { type: "boolean" },
        pull: { type: "boolean" },
        progress: { type: "string" },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new UsageError(`"kiln build" requires exactly 1 argument (the context directory), got ${positionals.length}`);
  }
  const buildArgs: Record<string, string> = {};
  for (const arg of values["build-arg"] ?? []) {
    const eq = arg.indexOf("=");
    // As docker build: `--build-arg NAME` takes the value from the environment.
    if (eq < 0) {
      const fromEnv = process.env[arg];
      if (fromEnv !== undefined) buildArgs[arg] = fromEnv;
    } else buildArgs[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  const progress = values.progress ?? "auto";
  if (!["auto", "tty", "plain", "rawjson", "quiet"].includes(progress)) {
    throw new UsageError(`Cannot use --progress "${progress}": choose auto, tty, plain, rawjson or quiet`);
  }
  const context = positionals[0] ?? ".";
  return {
    progress: progress as ProgressMode,
    options: {
      context,
      ...(values.file === undefined ? {} : { file: values.file }),
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(values.platform === undefined ? {} : { platform: values.platform }),
      buildArgs,
      outputs: values.output ?? [],
      tags: values.tag ?? [],
      noCache: values["no-cache"] ?? false,
      pull: values.pull ?? false,
    },
  };
}
