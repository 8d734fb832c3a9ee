import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultPlatform, formatPlatform, parsePlatform, type NetworkMode, type Platform } from "../../solver/llb/index.js";
import { translateBuildctlArgs } from "./buildctl-args.js";
import { parseBuildContexts, type BuildContextSpec } from "./build-context.js";
import { parseCacheExport, parseCacheImport } from "./cache-spec.js";
import type { CacheExportSpec, CacheImportSpec } from "../../exporter/cache/index.js";
import { parseOutput, type OutputSpec } from "./output.js";
import { UsageError } from "./usage-error.js";
import { parseSnapshotter } from "./snapshotter.js";
import { parseSecretFlags, parseSshFlags } from "./secret.js";
import type { SecretSource, SshSource } from "../../worker/index.js";
import { parseEntitlement, type Entitlement } from "../../worker/ops/entitlements.js";
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
  /** `os/arch[/variant]`, or several separated by commas (a multi-platform image); default this machine's. */
  readonly platform?: string;
  readonly outputs?: readonly string[];
  /** Image names (`-t`): stored in kiln's local image store. */
  readonly tags?: readonly string[];
  readonly noCache?: boolean;
  /** Stages (by name, or index when unnamed) whose steps ignore the cache (`--no-cache-filter`). */
  readonly noCacheFilter?: readonly string[];
  /** Say why each step that runs was not cached (`--explain-cache`): `vertex.explain` events. */
  readonly explainCache?: boolean;
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
  /** Entitlements granted to the build (`--allow`, BuildKit's names): `security.insecure` lets `RUN --security=insecure` run privileged. */
  readonly allow?: readonly string[];
  /** Where to export the build cache (`--cache-to`, buildctl's `--export-cache`), as written: `type=local,dest=DIR,mode=max`. */
  readonly cacheTo?: readonly string[];
  /** Caches to import (`--cache-from`, buildctl's `--import-cache`), as written: `type=local,src=DIR`, `type=registry,ref=REF` or `REF`. */
  readonly cacheFrom?: readonly string[];
}

/** BuildOptions validated once, with every default filled in. Inner code only sees this. */
export interface BuildRequest {
  readonly contextDir: string;
  readonly dockerfile: string;
  readonly target: string | undefined;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The first of `platforms`: what a single-platform build is for. */
  readonly platform: Platform;
  /** Every platform asked for (`--platform a,b`), in order, without duplicates; at least one. */
  readonly platforms: readonly Platform[];
  readonly outputs: readonly OutputSpec[];
  readonly tags: readonly string[];
  readonly noCache: boolean;
  readonly noCacheFilter: readonly string[];
  readonly explainCache: boolean;
  readonly pull: boolean;
  readonly push: boolean;
  readonly buildContexts: Readonly<Record<string, BuildContextSpec>>;
  readonly check: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly network: NetworkMode;
  readonly secrets: Readonly<Record<string, SecretSource>>;
  readonly ssh: Readonly<Record<string, SshSource>>;
  readonly allow: readonly Entitlement[];
  readonly cacheExports: readonly CacheExportSpec[];
  readonly cacheImports: readonly CacheImportSpec[];
}

/** Validates options and fills defaults; throws UsageError naming what is wrong. */
export function resolveBuildOptions(options: BuildOptions, cwd = process.cwd()): BuildRequest {
  const contextDir = resolve(cwd, options.context);
  const dockerfile = options.file === undefined ? join(contextDir, "Dockerfile") : isAbsolute(options.file) ? options.file : resolve(cwd, options.file);
  let platforms: Platform[];
  try {
    const texts = (options.platform ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
    const parsed = texts.length === 0 ? [defaultPlatform()] : texts.map(parsePlatform);
    platforms = [...new Map(parsed.map((p) => [formatPlatform(p), p])).values()];
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const platform = platforms[0] as Platform;
  return {
    contextDir,
    dockerfile,
    target: options.target,
    buildArgs: options.buildArgs ?? {},
    platform,
    platforms,
    outputs: (options.outputs ?? []).map(parseOutput),
    tags: options.tags ?? [],
    noCache: options.noCache ?? false,
    noCacheFilter: options.noCacheFilter ?? [],
    explainCache: options.explainCache ?? false,
    pull: options.pull ?? false,
    push: options.push ?? false,
    buildContexts: parseBuildContexts(options.buildContexts ?? [], cwd),
    check: options.check ?? false,
    labels: options.labels ?? {},
    network: resolveNetwork(options.network),
    secrets: options.secrets ?? {},
    ssh: options.ssh ?? {},
    allow: resolveAllow(options.allow ?? []),
    cacheExports: (options.cacheTo ?? []).map((value) => parseCacheExport(value, cwd)),
    cacheImports: (options.cacheFrom ?? []).map((value) => parseCacheImport(value, cwd)),
  };
}

function resolveAllow(names: readonly string[]): Entitlement[] {
  try {
    return [...new Set(names.flatMap((n) => n.split(",")).map((n) => n.trim()).filter((n) => n !== "").map(parseEntitlement))];
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
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
        "cache-to": { type: "string", multiple: true },
        "cache-from": { type: "string", multiple: true },
        "no-cache-filter": { type: "string", multiple: true },
        "explain-cache": { type: "boolean" },
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
        allow: { type: "string", multiple: true },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  // Checked here, so a wrong value is a usage error before anything starts.
  for (const value of values["cache-to"] ?? []) parseCacheExport(value);
  for (const value of values["cache-from"] ?? []) parseCacheImport(value);
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
  // As docker buildx: SOURCE_DATE_EPOCH in the environment is a build arg unless one is given.
  const epochFromEnv = process.env["SOURCE_DATE_EPOCH"];
  if (epochFromEnv !== undefined && epochFromEnv !== "" && buildArgs["SOURCE_DATE_EPOCH"] === undefined) buildArgs["SOURCE_DATE_EPOCH"] = epochFromEnv;
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
      ...(values["explain-cache"] === true ? { explainCache: true } : {}),
      pull: values.pull ?? false,
      push: values.push ?? false,
      buildContexts: values["build-context"] ?? [],
      check: values.check ?? false,
      labels,
      ...(values.network === undefined ? {} : { network: resolveNetwork(values.network) }),
      ...(values.secret === undefined ? {} : { secrets: parseSecretFlags(values.secret) }),
      ...(values.ssh === undefined ? {} : { ssh: parseSshFlags(values.ssh) }),
      ...(values.allow === undefined ? {} : { allow: values.allow }),
      ...(values["cache-to"] === undefined ? {} : { cacheTo: values["cache-to"] }),
      ...(values["cache-from"] === undefined ? {} : { cacheFrom: values["cache-from"] }),
    },
  };
}
