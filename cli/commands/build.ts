import { writeFile } from "node:fs/promises";
import type { EngineOverrides } from "../options/snapshotter.js";
import { isKilnError, KilnError } from "../../solver/llb/index.js";
import type { BuildResult, BuildService, Engine } from "../api.js";
import { connectDaemon } from "../daemon/client.js";
import { parseBuildArgs, type ParsedBuildCommand } from "../options/build-request.js";
import { readStdinContext } from "../options/stdin-context.js";
import { renderError } from "../render/error.js";
import { createProgressRenderer } from "../ui/renderer.js";
import type { CommandContext } from "./command.js";

export const buildHelp = `Usage: kiln build [OPTIONS] CONTEXT

Build an image from a Dockerfile.

Options:
  -f, --file PATH          Dockerfile (default: CONTEXT/Dockerfile)
  -t, --tag NAME           Name the image in kiln's local image store (repeatable)
      --target STAGE       Build this stage (default: the last one)
      --build-arg K=V      Set a build argument (repeatable; K alone takes it from the environment)
      --build-context NAME=DIR|docker-image://REF|oci-layout://PATH[@DIGEST]
                           A named context for FROM NAME and COPY --from=NAME (repeatable)
      --check              Only run the build checks: report them, build nothing (exit 1 when one is an error)
      --platform OS/ARCH[,OS/ARCH...]
                           Target platform(s) (default: this machine's); several make one image
                           per platform under an OCI index, and local/tar outputs one directory
                           per platform (linux_amd64/...); RUN is not emulated for foreign ones
  -o, --output SPEC        type=oci,dest=FILE[,tar=false] | type=docker,dest=FILE | type=local,dest=DIR
                           | type=tar,dest=FILE|- | type=image,name=NAME[,push=true][,push-by-digest=true]
                           | type=registry,name=NAME | DIR (local) | - (tar on stdout)
                           Image outputs (oci, docker, image) also take BuildKit's options:
                           compression=gzip|zstd|uncompressed, compression-level=N,
                           force-compression=true (recompress stored layers), oci-mediatypes=false
                           (Docker media types; type=docker's default), rewrite-timestamp=true
                           (clamp file times to SOURCE_DATE_EPOCH), "name=A,B" (several names),
                           annotation.K=V, annotation-manifest[PLATFORM].K=V,
                           annotation-manifest-descriptor.K=V, annotation-index.K=V,
                           annotation-index-descriptor.K=V (index ones need several platforms)
      --push               Push every -t name to its registry
      --no-cache           Do not use the cache
      --no-cache-filter S  Do not use the cache for the steps of stage S (repeatable, or comma-separated)
      --explain-cache      Say why each step that runs was not cached: which file, build arg or env
                           value, base image digest or instruction text changed, or "no earlier
                           build of this step" / --no-cache (plain: "#N explain: ..." lines)
      --cache-to SPEC      Export the build cache (repeatable; buildctl: --export-cache):
                           type=local,dest=DIR[,mode=min|max][,cache-mounts=true]
                           | type=registry,ref=REF[,mode=min|max][,cache-mounts=true] | type=inline
                           mode=min (default): the final stage's steps; max: every step;
                           cache-mounts=true also ships RUN --mount=type=cache directories
      --cache-from SPEC    Import a build cache (repeatable; buildctl: --import-cache):
                           type=local,src=DIR | type=registry,ref=REF | REF (a cache, or an image
                           built with --cache-to type=inline)
      --pull               Resolve base images from their registry, not the local store
      --progress MODE      auto | tty | plain | rawjson | quiet (default: auto: tty on a terminal, else plain)
      --label K=V          Add a label to the image (repeatable)
      --network MODE       Network of RUN steps that do not choose one: default | none | host
      --snapshotter KIND   auto | overlay | native (default auto: overlay where it mounts, else copies)
      --secret id=ID,src=FILE|env=VAR
                           A secret for RUN --mount=type=secret (repeatable; never stored in the image)
      --ssh ID[=SOCKET]    Forward an SSH agent (default $SSH_AUTH_SOCK) for RUN --mount=type=ssh
      --allow ENTITLEMENT  Grant a privilege (repeatable): security.insecure lets RUN --security=insecure
                           run privileged (all capabilities, no seccomp); network.host is accepted
      --iidfile FILE       Write the image ID (the config digest, as docker build does) to FILE
      --metadata-file FILE Write the build's metadata (digests, names, build ref) to FILE as JSON

SOURCE_DATE_EPOCH (a build arg, or the environment variable as buildx passes it) sets the
images' creation and history times; with rewrite-timestamp=true builds are reproducible.

CONTEXT is a directory, or "-": a tar archive of the context (gzip allowed) or a bare Dockerfile
on stdin.

buildctl's spelling works too, and means the same:
  kiln build --frontend dockerfile.v0 --local context=DIR --local dockerfile=DIR \\
    [--opt filename=NAME] [--opt target=T] [--opt build-arg:K=V] [--opt label:K=V] \\
    [--opt context:NAME=V] [--opt platform=P] [--opt no-cache=]
    [--export-cache SPEC] [--import-cache SPEC]

Every step's full output is kept: see "kiln logs".
`;

/** `kiln build`: exit 0 when built, 1 when the build failed, 2 for a usage error. */
export async function runBuild(argv: readonly string[], context: CommandContext, openEngine: (overrides?: EngineOverrides) => Promise<Engine>): Promise<number> {
  const parsed = parseBuildArgs(argv);
  const { progress } = parsed;
  const stdinContext = parsed.options.context === "-" ? await readStdinContext(parsed.options, context.stdin) : undefined;
  const options = stdinContext?.options ?? parsed.options;
  const service: BuildService = context.addr === undefined ? await openEngine(parsed.snapshotter === undefined ? {} : { snapshotter: parsed.snapshotter }) : await connectDaemon(context.addr);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new KilnError("KILN_CANCELLED", "Build cancelled"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const handle = service.build(options, controller.signal);
    const render = await createProgressRenderer(progress, context.stderrStream);
    const drawing = (async () => {
      for await (const event of handle.events) render.push(event);
    })();
    const summary = { outputs: [...(options.outputs ?? []), ...(options.tags ?? []).map((t) => `name=${t}`)], buildId: handle.id };
    let result: BuildResult;
    try {
      result = await handle.result;
    } catch (error) {
      await drawing;
      await render.finish({ ...summary, failed: true, finished: Date.now(), digest: undefined });
      context.stderr(renderError(error, { debug: context.debug }));
      if (progress !== "rawjson" && progress !== "quiet") context.stderr(`full logs: kiln logs ${handle.id}\n`);
      return isKilnError(error) && error.code === "KILN_USAGE" ? 2 : 1;
    }
    await drawing;
    await render.finish({ ...summary, failed: false, finished: Date.now(), digest: result.digest });
    if (progress === "quiet" && result.digest !== undefined) context.stdout(`${result.digest}\n`);
    await writeResultFiles(parsed, result);
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await service.close();
    await stdinContext?.dispose();
  }
}

/**
 * `--iidfile` gets the image ID as docker build writes it: the config digest (docker's image ID;
 * buildx also prefers `containerimage.config.digest`, where BuildKit's own buildctl has only the
 * manifest digest). `--metadata-file` gets the export metadata as buildctl writes it: values that
 * are JSON objects (`containerimage.descriptor`) as objects, the rest as strings.
 */
async function writeResultFiles(parsed: ParsedBuildCommand, result: BuildResult): Promise<void> {
  if (parsed.iidfile !== undefined) {
    const id = result.metadata["containerimage.config.digest"] ?? result.digest;
    if (id === undefined) throw new KilnError("KILN_NO_IMAGE", "Cannot write --iidfile: the build made no image; add -t NAME or an image --output");
    await writeFile(parsed.iidfile, id);
  }
  if (parsed.metadataFile !== undefined) {
    const decoded = Object.fromEntries(Object.entries(result.metadata).map(([key, value]) => [key, value.startsWith("{") ? parseJsonOr(value) : value]));
    await writeFile(parsed.metadataFile, `${JSON.stringify(decoded, null, 2)}\n`);
  }
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
