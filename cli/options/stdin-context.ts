import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { Readable } from "node:stream";
import { extractContextArchive, looksLikeArchive } from "../context-archive.js";
import type { BuildOptions } from "./build-request.js";

/** A context read from stdin, unpacked into a temporary directory that `dispose` removes. */
export interface StdinContext {
  readonly options: BuildOptions;
  dispose(): Promise<void>;
}

/**
 * docker build's `CONTEXT` = `-`: stdin holds either a tar archive of the context (plain or
 * gzip-compressed; `-f` then names a file inside it) or a bare Dockerfile, which builds with an
 * empty context. Returns `options` pointing at the unpacked copy.
 */
export async function readStdinContext(options: BuildOptions, stdin: NodeJS.ReadableStream): Promise<StdinContext> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  const bytes = Buffer.concat(chunks);
  const dir = await mkdtemp(join(tmpdir(), "kiln-stdin-context-"));
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const context = join(dir, "context");
    if (looksLikeArchive(bytes)) {
      await extractContextArchive(Readable.from([bytes]), context);
      const file = options.file === undefined ? undefined : isAbsolute(options.file) ? options.file : join(context, options.file);
      return { options: { ...options, context, ...(file === undefined ? {} : { file }) }, dispose };
    }
    // A bare Dockerfile: the context is empty, and -f has nothing to name.
    const dockerfile = join(dir, "Dockerfile");
    await writeFile(dockerfile, bytes);
    await mkdir(context);
    return { options: { ...options, context, file: dockerfile }, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
