import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Writable } from "node:stream";
import { createSourceFile, lowerDockerfile, parseDockerfile, type LoweredBuild, type SourceFile } from "../frontend/index.js";
import { createSolver, openCacheStore, openStepHistory, type CacheStore, type ProgressEvent, type ProgressSink, type Solver } from "../solver/index.js";
import { defaultPlatform, formatPlatform, KilnError, type Digest, type ImageSpec } from "../solver/llb/index.js";
import { checkEntitlements, createWorker, type Worker } from "../worker/index.js";
import { collectGarbage, gcDue } from "./cache/cache-gc.js";
import { exportBuildCache, inlineCacheHook, openCacheSources, type SolvedBuild } from "./cache/build-cache.js";
import { withNoCacheFilter } from "./cache/no-cache-filter.js";
import { BuildLogWriter, newBuildId } from "./build-logs.js";
import { EventChannel } from "./event-channel.js";
import { parseSourceDateEpoch } from "../exporter/index.js";
import { BlobLocations, exportResult, type PlatformResult } from "./export-outputs.js";
import { explainMissingSource } from "./missing-source.js";
import { frontendContexts, localContextDirs } from "./named-contexts.js";
import { resolveBuildOptions, type BuildOptions, type BuildRequest } from "./options/build-request.js";
import { forceNetwork } from "./options/force-network.js";
import type { OutputSpec } from "./options/output.js";
import { defaultStateRoot } from "./state-root.js";

export type { BuildOptions, BuildRequest } from "./options/build-request.js";
export type { ProgressEvent } from "../solver/index.js";
export type { LoweredBuild } from "../frontend/index.js";

/** Where an engine keeps its state. */
export interface EngineOptions {
  /** The state root; default /var/lib/kiln for root, ~/.local/share/kiln otherwise. */
  readonly root?: string;
  /** `auto` (default: overlay where a probe mount works, else native), `overlay` or `native`. */
  readonly snapshotter?: SnapshotterChoice;
  /**
   * Where the default garbage collection runs when a build finds it due (once an hour at most).
   * Default: in this process, after the build's result is settled, so no build waits for it;
   * `close()` waits for it. The CLI passes a function instead, which starts `kiln prune --auto`
   * in a process of its own (as git detaches its `gc --auto`): a command line exits when its
   * build is done.
   */
  readonly detachGc?: (root: string) => void;
}

/** Which snapshotter the worker uses (`--snapshotter`). */
export type SnapshotterChoice = "auto" | "overlay" | "native";

/** What a finished build produced. */
export interface BuildResult {
  /** The image manifest digest, when an image was made (an output or a tag asked for one). */
  readonly digest: Digest | undefined;
  readonly config: ImageSpec | undefined;
  readonly outputs: readonly OutputSpec[];
  /** BuildKit-style export metadata (`containerimage.digest`, `image.name`…), as `--metadata-file` writes it. */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * A running build: its result, and its progress as an async iterable that ends with the build.
 * The handle itself is both: `await build(o)` is the result, `for await (const e of build(o))`
 * the events (iterate the events once: they are not replayed).
 */
export interface BuildHandle extends PromiseLike<BuildResult>, AsyncIterable<ProgressEvent> {
  /** The build's id: `kiln logs ID` shows every step's full output. */
  readonly id: string;
  readonly result: Promise<BuildResult>;
  readonly events: AsyncIterable<ProgressEvent>;
}

/** Where a build's standard output goes (`-o -`, `type=tar,dest=-`): default process.stdout. A daemon passes its client's. */
export interface BuildIo {
  readonly stdout?: Writable;
}

/** What runs builds: an engine in this process, or a daemon over its socket (cli/daemon/client.ts). */
export interface BuildService {
  /** Starts a build; `id` names its logs (default: a new id). */
  build(options: BuildOptions, signal?: AbortSignal, id?: string, io?: BuildIo): BuildHandle;
  close(): Promise<void>;
}

/** An engine: one worker and one solver over a state root, shared by the builds it runs. */
export interface Engine extends BuildService {
  readonly root: string;
  readonly worker: Worker;
  /** The persistent cache store (`kiln du`, `kiln prune`). */
  readonly cache: CacheStore;
  /** Only the frontend's part of a build: the Definition and image metadata (`kiln debug dump-llb`). */
  lower(options: BuildOptions, signal?: AbortSignal): Promise<LoweredBuild>;
  close(): Promise<void>;
}

/** Opens the state root and wires worker, solver and exporters: kiln's one composition root. */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const root = options.root ?? defaultStateRoot();
  const worker = await createWorker({ root, ...(options.snapshotter === undefined ? {} : { snapshotter: options.snapshotter }) });
  const cache = await openCacheStore(join(root, "cache"));
  // Steps that ran are remembered under explain/ for `--explain-cache` (solver/step-history.ts).
  const solver = createSolver({ cacheStore: cache, stepHistory: openStepHistory(join(root, "explain")) });
  // Builds of this engine in flight: leases are dropped when the last one ends (a daemon lives long).
  let building = 0;
  // Garbage collections started after builds; close() waits for them.
  const collecting = new Set<Promise<unknown>>();
  const collectIfDue = (): void => {
    if (!gcDue(root)) return;
    if (options.detachGc !== undefined) return options.detachGc(root);
    // Best effort: a failed collection leaves the next due one to try again.
    const run = collectGarbage(root, cache, worker).catch(() => undefined).finally(() => collecting.delete(run));
    collecting.add(run);
  };
  return {
    root,
    worker,
    cache,
    build: (buildOptions, signal, id, io) => {
      const handle = startBuild(worker, solver, resolveBuildOptions(buildOptions), signal, new BuildLogWriter(join(root, "logs"), id ?? newBuildId()), io?.stdout ?? process.stdout, cache);
      building += 1;
      const result = handle.result.finally(() => {
        building -= 1;
        if (building === 0) worker.snapshotter.releaseLeases?.();
      });
      // The default garbage collection (cli/cache/cache-gc.ts) follows a successful build.
      result.then(collectIfDue, () => {});
      return buildHandle(handle.id, result, handle.events);
    },
    lower: (buildOptions, signal) => lowerRequest(worker, resolveBuildOptions(buildOptions), () => {}, signal ?? new AbortController().signal),
    close: async () => {
      await Promise.all(collecting);
      // Commands other than builds (import, load, rmi) take leases too: no file outlives them.
      worker.snapshotter.releaseLeases?.();
      await worker.close();
    },
  };
}

/**
 * Builds once with a fresh engine: `import { build } from "kiln"`. Cancel with `signal`: running
 * containers are killed and nothing partial is recorded.
 */
export function build(options: BuildOptions & EngineOptions & { readonly signal?: AbortSignal }): BuildHandle {
  const events = new EventChannel<ProgressEvent>();
  const id = newBuildId();
  const result = (async () => {
    const engine = await createEngine(options.root === undefined ? {} : { root: options.root });
    try {
      const handle = engine.build(options, options.signal, id);
      const forwarding = (async () => {
        for await (const event of handle.events) events.push(event);
      })();
      const built = await handle.result;
      await forwarding;
      return built;
    } finally {
      await engine.close();
    }
  })();
  result.then(
    () => events.close(),
    () => events.close(),
  );
  return buildHandle(id, result, events);
}

/** The handle over a result and its events (see BuildHandle). */
export function buildHandle(id: string, result: Promise<BuildResult>, events: AsyncIterable<ProgressEvent>): BuildHandle {
  return {
    id,
    result,
    events,
    then: (onFulfilled, onRejected) => result.then(onFulfilled, onRejected),
    [Symbol.asyncIterator]: () => events[Symbol.asyncIterator](),
  };
}

function startBuild(worker: Worker, solver: Solver, request: BuildRequest, signal: AbortSignal | undefined, logs: BuildLogWriter, stdout: Writable, cache: CacheStore): BuildHandle {
  const events = new EventChannel<ProgressEvent>();
  const sink: ProgressSink = (event) => {
    logs.push(event);
    events.push(event);
  };
  const result = runBuild(worker, solver, request, sink, signal ?? new AbortController().signal, stdout, cache).then(
    async (built) => {
      await logs.finish(undefined).catch(() => {});
      return { ...built, metadata: { ...built.metadata, "kiln.build.ref": logs.id } };
    },
    async (error: unknown) => {
      await logs.finish(error).catch(() => {});
      throw error;
    },
  );
  result.then(
    () => events.close(),
    () => events.close(),
  );
  return buildHandle(logs.id, result, events);
}

/** Reads and lowers the request's Dockerfile, with the request's labels and network applied. */
async function lowerRequest(worker: Worker, request: BuildRequest, sink: ProgressSink, signal: AbortSignal): Promise<LoweredBuild> {
  const source = await readSource(request.dockerfile, basename(request.dockerfile));
  const dockerignore = await readDockerignore(request);
  const dockerfile = parseDockerfile(source);
  const lowered = await lowerDockerfile(dockerfile, {
    ...(request.target === undefined ? {} : { target: request.target }),
    buildArgs: request.buildArgs,
    platform: request.platform,
    buildPlatform: defaultPlatform(),
    resolveImage: (ref, o) => worker.resolveImage(ref, { platform: o.platform, signal, pull: request.pull ? "always" : "missing" }),
    ...(dockerignore === undefined ? {} : { dockerignore }),
    namedContexts: await frontendContexts(worker, request.buildContexts, signal),
    checks: request.check ? "report" : "apply",
    signal,
  });
  for (const w of lowered.warnings) {
    const locations = w.ranges.length === 0 ? [] : [{ source: source.toSourceInfo(), ranges: w.ranges }];
    sink({ type: "warning", ...(w.rule === undefined ? {} : { rule: w.rule }), message: w.message, locations, time: Date.now() });
  }
  const labelled = Object.keys(request.labels).length === 0 ? lowered.image : {
    ...lowered.image,
    config: { ...lowered.image.config, Labels: { ...lowered.image.config.Labels, ...request.labels } },
  };
  return { ...lowered, definition: forceNetwork(lowered.definition, request.network), image: labelled };
}

async function runBuild(worker: Worker, solver: Solver, request: BuildRequest, sink: ProgressSink, signal: AbortSignal, stdout: Writable, cache: CacheStore): Promise<BuildResult> {
  // Where base images came from: a push to the same registry mounts their blobs instead of uploading them.
  const locations = new BlobLocations();
  // `--platform a,b`: the target is lowered and solved once per platform (TARGETPLATFORM etc. per
  // platform), and the exporters make one image per platform under an index.
  const results: PlatformResult[] = [];
  // `--cache-from`: imported caches the solver consults when its own store misses.
  const cacheSources = request.check ? [] : await openCacheSources(worker, request.cacheImports, request.platform, sink, signal);
  const solves: SolvedBuild[] = [];
  for (const platform of request.platforms) {
    const lowered = await lowerRequest({ ...worker, resolveImage: locations.recording(worker.resolveImage) }, { ...request, platform }, sink, signal);
    if (request.check) {
      // `--check`: the findings went out as warning events; nothing is built.
      if (lowered.checkFailed === true) throw new KilnError("KILN_CHECK_FAILED", `Build checks failed: ${lowered.warnings.length} finding(s) are errors ("# check=error=true")`);
      return { digest: undefined, config: undefined, outputs: [], metadata: {} };
    }
    // As BuildKit's solver: a RUN that needs an entitlement the build lacks fails before anything runs.
    checkEntitlements(lowered.definition, request.allow);
    const localDirs = localContextDirs(request.contextDir, request.buildContexts);
    const solved = await solver.solve(withNoCacheFilter(lowered.definition, request.noCacheFilter), {
      resolveOp: worker.resolveOp({ localDirs, secrets: request.secrets, ssh: request.ssh, entitlements: request.allow }),
      signal,
      onEvent: sink,
      noCache: request.noCache,
      explain: { scope: `${request.contextDir}\0${request.dockerfile}\0${formatPlatform(platform)}`, report: request.explainCache, buildArgs: Object.keys(request.buildArgs) },
      isAlive: (ref) => worker.snapshotter.exists(ref.id),
      cacheSources,
    }).catch(async (error: unknown) => {
      throw await explainMissingSource(error, { definition: lowered.definition, localDirs, dockerignore: () => readDockerignore(request) });
    });
    results.push({ platform, ref: solved.ref, image: lowered.image });
    solves.push({ definition: lowered.definition, vertices: solved.vertices });
  }

  // `--cache-to type=inline`: the cache goes into the image config.
  const amendImage = inlineCacheHook(worker, cache, request.cacheExports, solves);
  const exported = await exportResult({
    worker,
    results,
    epoch: parseSourceDateEpoch(request.buildArgs["SOURCE_DATE_EPOCH"]),
    outputs: request.outputs,
    tags: request.tags,
    push: request.push,
    locations,
    stdout,
    sink,
    signal,
    ...(amendImage === undefined ? {} : { amendImage }),
  });
  // `--cache-to type=local|registry`: after the outputs, so layer blobs the image export made are reused.
  await exportBuildCache(worker, cache, request.cacheExports, solves, sink, signal);
  return { digest: exported.digest, config: exported.config, outputs: request.outputs, metadata: exported.metadata };
}

async function readSource(path: string, name: string): Promise<SourceFile> {
  try {
    return createSourceFile(name, await readFile(path, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : String(error);
    throw new KilnError("KILN_DOCKERFILE_NOT_FOUND", `Cannot read Dockerfile "${path}": ${why}`, { cause: error });
  }
}

/** `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's `.dockerignore`, as in BuildKit. */
async function readDockerignore(request: BuildRequest): Promise<SourceFile | undefined> {
  for (const path of [`${request.dockerfile}.dockerignore`, join(request.contextDir, ".dockerignore")]) {
    try {
      return createSourceFile(basename(path), await readFile(path, "utf8"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  return undefined;
}
