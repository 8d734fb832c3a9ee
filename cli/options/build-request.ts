import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultPlatform, parsePlatform, type NetworkMode, type Platform } from "../../solver/llb/index.js";
import { translateBuildctlArgs } from "./buildctl-args.js";
import { parseBuildContexts, type BuildContextSpec } from "./build-context.js";
import { parseOutput, type OutputSpec } from "./output.js";
import { UsageError } from "./usage-error.js";
import { parseSnapshotter } from "./snapshotter.js";
import { parseSecretFlags, parseSshFlags } from "./secret.js";
import type { SecretSource, SshSource } from "../../worker/index.js";
import type { SnapshotterChoice } from "../api.js";

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
  /** Stages (by name, or index when unnamed) whose steps ignore the cache (`--no-cache-filter`). */
  readonly noCacheFilter?: readonly string[];
  /** Always resolve base images from their registry, never from the local store. */
  readonly pull?: boolean;
  /** Push every `-t` name to its registry after the build (`--push`). */
  readonly push?: boolean;
  /** Named build contexts (`--build-context NAME=DIR|docker-image://REF|oci-layout://PATH[@DIGEST]`), as written. */
  readonly buildContexts?: readonly string[];
  /** Only run the build checks (`--check`): report them and build nothing; fail when any is an error. */
  readonly check?: boolean;
  /** Labels added to the image config (`--label`), over the Dockerfile's LABELs. */
  readonly labels?: Readonly<Record<string, string>>;
  /** The network of every RUN that does not choose one with `--network` (docker build's `--network`); default "default". */
  readonly network?: NetworkMode;
  /** Secrets by id for `RUN --mount=type=secret` (`--secret`): a file, or an environment variable of this process. */
  readonly secrets?: Readonly<Record<string, SecretSource>>;
  /** SSH agent sockets by id for `RUN --mount=type=ssh` (`--ssh`). */
  readonly ssh?: Readonly<Record<string, SshSource>>;
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
  readonly noCacheFilter: readonly string[];
  readonly pull: boolean;
  readonly push: boolean;
  readonly buildContexts: Readonly<Record<string, BuildContextSpec>>;
  readonly check: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly network: NetworkMode;
  readonly secrets: Readonly<Record<string, SecretSource>>;
  readonly ssh: Readonly<Record<string, SshSource>>;
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
    noCacheFilter: options.noCacheFilter ?? [],
    pull: options.pull ?? false,
    push: options.push ?? false,
    buildContexts: parseBuildContexts(options.buildContexts ?? [], cwd),
    check: options.check ?? false,
    labels: options.labels ?? {},
    network: resolveNetwork(options.network),
    secrets: options.secrets ?? {},
    ssh: options.ssh ?? {},
  };
}

function resolveNetwork(network: string | undefined): NetworkMode {
  if (network === undefined || network === "default" || network === "none" || network === "host") return network ?? "default";
  throw new UsageError(`Cannot use network "${network}": choose default, none or host`);
}

/** `kiln build` flags, docker build's names. */
export interface ParsedBuildCommand {
  readonly options: BuildOptions;
  readonly progress: ProgressMode;
  /** `--iidfile`: where to write the image digest. */
  readonly iidfile: string | undefined;
  /** `--metadata-file`: where to write the build's metadata as JSON. */
  readonly metadataFile: string | undefined;
  /** `--snapshotter`: overrides the engine's choice for this build. */
  readonly snapshotter: SnapshotterChoice | undefined;
}

/** Parses `kiln build [flags] CONTEXT`, in docker build's or buildctl's spelling (see translateBuildctlArgs). */
export function parseBuildArgs(argv: readonly string[]): ParsedBuildCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: translateBuildctlArgs(argv),
      allowPositionals: true,
      strict: true,
      options: {
        file: { type: "string", short: "f" },
        tag: { type: "string", short: "t", multiple: true },
        target: { type: "string" },
        "build-arg": { type: "string", multiple: true },
        "build-context": { type: "string", multiple: true },
        check: { type: "boolean" },
        platform: { type: "string" },
        output: { type: "string", short: "o", multiple: true },
        "no-cache": { type: "boolean" },
        // Accepted so that the answer is a clear "not yet" rather than "unknown option".
        "cache-to": { type: "string", multiple: true },
        "cache-from": { type: "string", multiple: true },
        "no-cache-filter": { type: "string", multiple: true },
        pull: { type: "boolean" },
        push: { type: "boolean" },
        progress: { type: "string" },
        label: { type: "string", multiple: true },
        iidfile: { type: "string" },
        "metadata-file": { type: "string" },
        network: { type: "string" },
        snapshotter: { type: "string" },
        secret: { type: "string", multiple: true },
        ssh: { type: "string", multiple: true },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values["cache-to"] !== undefined || values["cache-from"] !== undefined) {
    throw new UsageError(
      "Cannot export or import the build cache (--cache-to/--cache-from, buildctl's --export-cache/--import-cache): kiln does not support it yet; the cache under --root is kept between builds",
    );
  }
  if (positionals.length !== 1) {
    throw new UsageError(`"kiln build" requires exactly 1 argument (the context directory, or --local context=DIR), got ${positionals.length}`);
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
  const labels: Record<string, string> = {};
  for (const label of values.label ?? []) {
    const eq = label.indexOf("=");
    labels[eq < 0 ? label : label.slice(0, eq)] = eq < 0 ? "" : label.slice(eq + 1);
  }
  const context = positionals[0] ?? ".";
  return {
    progress: progress as ProgressMode,
    iidfile: values.iidfile,
    metadataFile: values["metadata-file"],
    snapshotter: values.snapshotter === undefined ? undefined : parseSnapshotter(values.snapshotter),
    options: {
      context,
      ...(values.file === undefined ? {} : { file: values.file }),
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(values.platform === undefined ? {} : { platform: values.platform }),
      buildArgs,
      outputs: values.output ?? [],
      tags: values.tag ?? [],
      noCache: values["no-cache"] ?? false,
      noCacheFilter: (values["no-cache-filter"] ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== ""),
      pull: values.pull ?? false,
      push: values.push ?? false,
      buildContexts: values["build-context"] ?? [],
      check: values.check ?? false,
      labels,
      ...(values.network === undefined ? {} : { network: resolveNetwork(values.network) }),
      ...(values.secret === undefined ? {} : { secrets: parseSecretFlags(values.secret) }),
      ...(values.ssh === undefined ? {} : { ssh: parseSshFlags(values.ssh) }),
    },
  };
}
