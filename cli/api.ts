import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  buildImage, storeImage, writeDockerArchive, writeOciLayout, type BuiltImage,
} from "../exporter/index.js";
import { createSourceFile, lowerDockerfile, parseDockerfile, type SourceFile } from "../frontend/index.js";
import { createSolver, openCacheStore, reportVertex, type ProgressEvent, type ProgressSink, type Solver } from "../solver/index.js";
import { defaultPlatform, KilnError, sha256, type Digest, type ImageSpec } from "../solver/llb/index.js";
import { createWorker, type Worker } from "../worker/index.js";
import { EventChannel } from "./event-channel.js";
import { resolveBuildOptions, type BuildOptions, type BuildRequest } from "./options/build-request.js";
import type { OutputSpec } from "./options/output.js";
import { defaultStateRoot } from "./state-root.js";

export type { BuildOptions, BuildRequest } from "./options/build-request.js";
export type { ProgressEvent } from "../solver/index.js";

/** Where an engine keeps its state. */
export interface EngineOptions {
  /** The state root; default /var/lib/kiln for root, ~/.local/share/kiln otherwise. */
  readonly root?: string;
}

/** What a finished build produced. */
export interface BuildResult {
  /** The image manifest digest, when an image was made (an output or a tag asked for one). */
  readonly digest: Digest | undefined;
  readonly config: ImageSpec | undefined;
  readonly outputs: readonly OutputSpec[];
  /** BuildKit-style export metadata (`containerimage.digest`, `image.name`…), as `--metadata-file` writes it. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A running build: its result, and its progress as an async iterable that ends with the build. */
export interface BuildHandle {
  readonly result: Promise<BuildResult>;
  readonly events: AsyncIterable<ProgressEvent>;
}

/** An engine: one worker and one solver over a state root, shared by the builds it runs. */
export interface Engine {
  readonly root: string;
  readonly worker: Worker;
  build(options: BuildOptions, signal?: AbortSignal): BuildHandle;
  close(): Promise<void>;
}

/** Opens the state root and wires worker, solver and exporters: kiln's one composition root. */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const root = options.root ?? defaultStateRoot();
  const worker = await createWorker({ root });
  const solver = createSolver({ cacheStore: await openCacheStore(join(root, "cache")) });
  return {
    root,
    worker,
    build: (buildOptions, signal) => startBuild(worker, solver, resolveBuildOptions(buildOptions), signal),
    close: () => worker.close(),
  };
}

/**
 * Builds once with a fresh engine: `import { build } from "kiln"`. Cancel with `signal`: running
 * containers are killed and nothing partial is recorded.
 */
export function build(options: BuildOptions & EngineOptions & { readonly signal?: AbortSignal }): BuildHandle {
  const events = new EventChannel<ProgressEvent>();
  const result = (async () => {
    const engine = await createEngine(options.root === undefined ? {} : { root: options.root });
    try {
      const handle = engine.build(options, options.signal);
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
  return { result, events };
}

function startBuild(worker: Worker, solver: Solver, request: BuildRequest, signal: AbortSignal | undefined): BuildHandle {
  const events = new EventChannel<ProgressEvent>();
  const sink: ProgressSink = (event) => events.push(event);
  const result = runBuild(worker, solver, request, sink, signal ?? new AbortController().signal);
  result.then(
    () => events.close(),
    () => events.close(),
  );
  return { result, events };
}

async function runBuild(worker: Worker, solver: Solver, request: BuildRequest, sink: ProgressSink, signal: AbortSignal): Promise<BuildResult> {
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
    signal,
  });
  for (const w of lowered.warnings) {
    sink({ type: "warning", rule: w.rule, message: w.message, locations: [{ source: source.toSourceInfo(), ranges: w.ranges }], time: Date.now() });
  }
  const solved = await solver.solve(lowered.definition, {
    resolveOp: worker.resolveOp({ localDirs: { context: request.contextDir } }),
    signal,
    onEvent: sink,
    noCache: request.noCache,
    isAlive: (ref) => worker.snapshotter.exists(ref.id),
  });

  const imageOutputs = request.outputs;
  const wantsImage = imageOutputs.length > 0 || request.tags.length > 0;
  if (!wantsImage) return { digest: undefined, config: undefined, outputs: [], metadata: {} };

  const layers = solved.ref === null ? [] : await worker.layers(solved.ref);
  // A docker archive carries Docker's media types, as BuildKit's docker exporter writes them.
  const ociMediaTypes = !imageOutputs.some((o) => o.type === "docker");
  const built: BuiltImage = await reportVertex(sink, sha256("kiln:export:image"), "exporting layers and image config", () =>
    buildImage({
      ociMediaTypes,
      layers,
      image: lowered.image,
      content: worker.content,
      onLayerBlob: (snapshot, blob) => worker.snapshotter.setBlob(snapshot, blob),
      signal,
      onEvent: sink,
    }),
  );
  const metadata: Record<string, string> = {
    "containerimage.digest": built.manifest.digest,
    "containerimage.config.digest": built.config.digest,
  };
  for (const output of imageOutputs) {
    await writeOutput(worker, built, output, sink, signal);
  }
  const names = [...request.tags, ...imageOutputs.flatMap((o) => (o.type === "image" ? o.names : []))];
  if (names.length > 0) {
    await reportVertex(sink, sha256(`kiln:export:names:${names.join(",")}`), `naming to ${names.join(", ")}`, () => storeImage(built, worker.images, names));
    metadata["image.name"] = names.join(",");
  }
  return { digest: built.manifest.digest, config: built.spec, outputs: request.outputs, metadata };
}

async function writeOutput(worker: Worker, image: BuiltImage, output: OutputSpec, sink: ProgressSink, signal: AbortSignal): Promise<void> {
  switch (output.type) {
    case "oci":
      await reportVertex(sink, sha256(`kiln:export:oci:${output.dest}`), `exporting to oci image format ${output.dest}`, () =>
        writeOciLayout(image, worker.content, { dest: output.dest, tar: output.tar, names: output.names, signal }),
      );
      return;
    case "docker":
      await reportVertex(sink, sha256(`kiln:export:docker:${output.dest}`), `exporting to docker image format ${output.dest}`, () =>
        writeDockerArchive(image, worker.content, { dest: output.dest, names: output.names, signal }),
      );
      return;
    case "image":
      if (output.push) throw new KilnError("KILN_UNSUPPORTED", "Cannot push: registry push is not implemented yet");
      return;
  }
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
