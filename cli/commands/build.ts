import { isKilnError } from "../../solver/llb/index.js";
import type { ProgressEvent } from "../../solver/index.js";
import type { Engine } from "../api.js";
import { parseBuildArgs } from "../options/build-request.js";
import { renderError } from "../render/error.js";
import { PlainProgress } from "../ui/progress-plain.js";
import type { CommandContext } from "./command.js";

export const buildHelp = `Usage: kiln build [OPTIONS] CONTEXT

Build an image from a Dockerfile.

Options:
  -f, --file PATH          Dockerfile (default: CONTEXT/Dockerfile)
  -t, --tag NAME           Name the image in kiln's local image store (repeatable)
      --target STAGE       Build this stage (default: the last one)
      --build-arg K=V      Set a build argument (repeatable; K alone takes it from the environment)
      --platform OS/ARCH   Target platform (default: this machine's)
  -o, --output SPEC        type=oci,dest=FILE[,tar=false] | type=docker,dest=FILE | type=image,name=NAME
      --no-cache           Do not use the cache
      --pull               Resolve base images from their registry, not the local store
      --progress MODE      auto | plain | rawjson | quiet (default: auto)
`;

/** `kiln build`: exit 0 when built, 1 when the build failed. */
export async function runBuild(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  const { options, progress } = parseBuildArgs(argv);
  const engine = await openEngine();
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error("Build cancelled"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const render = renderer(progress, context);
  try {
    const handle = engine.build(options, controller.signal);
    const drawing = (async () => {
      for await (const event of handle.events) render.push(event);
    })();
    try {
      const result = await handle.result;
      await drawing;
      render.finish();
      if (result.digest !== undefined && progress !== "quiet") context.stderr(`image digest: ${result.digest}\n`);
      if (progress === "quiet" && result.digest !== undefined) context.stdout(`${result.digest}\n`);
      return 0;
    } catch (error) {
      await drawing;
      render.finish();
      context.stderr(renderError(error, { debug: context.debug }));
      return isKilnError(error) && error.code === "KILN_USAGE" ? 2 : 1;
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await engine.close();
  }
}

interface Renderer {
  push(event: ProgressEvent): void;
  finish(): void;
}

function renderer(mode: string, context: CommandContext): Renderer {
  switch (mode) {
    case "quiet":
      return { push: () => {}, finish: () => {} };
    case "rawjson":
      return { push: (e) => context.stderr(`${JSON.stringify(e)}\n`), finish: () => {} };
    default:
      // "auto" and "tty" draw plain lines until the live view lands (issue 7).
      return new PlainProgress(context.stderr);
  }
}
