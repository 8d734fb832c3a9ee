import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { NamedContext } from "../frontend/index.js";
import { KilnError, type Digest } from "../solver/llb/index.js";
import type { Worker } from "../worker/index.js";
import type { BuildContextSpec } from "./options/build-context.js";

/** The repository name OCI-layout contexts are pinned under: only ever resolved by digest, from the content store. */
const OCI_LAYOUT_REPOSITORY = "kiln.oci-layout.invalid/context";

/** A named context that cannot be read (an OCI layout without the image asked for). */
export class BuildContextError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_BUILD_CONTEXT_INVALID", message, options);
  }
}

/** The directories behind the build's local sources: the main context and every directory named context. */
export function localContextDirs(contextDir: string, contexts: Readonly<Record<string, BuildContextSpec>>): Record<string, string> {
  const dirs: Record<string, string> = { context: contextDir };
  for (const [name, spec] of Object.entries(contexts)) if (spec.kind === "local") dirs[name] = spec.dir;
  return dirs;
}

/**
 * The named contexts as the frontend takes them. A directory becomes the local source of its
 * name; an image stays a reference; an OCI layout has the blobs of the image it names copied into
 * the worker's content store (verified by digest) and becomes a digest-pinned reference that
 * resolves from there without a registry.
 */
export async function frontendContexts(worker: Worker, contexts: Readonly<Record<string, BuildContextSpec>>, signal: AbortSignal): Promise<Record<string, NamedContext>> {
  const out: Record<string, NamedContext> = {};
  for (const [name, spec] of Object.entries(contexts)) {
    switch (spec.kind) {
      case "local":
        out[name] = { kind: "local", name };
        break;
      case "image":
        out[name] = { kind: "image", ref: spec.ref };
        break;
      case "oci-layout": {
        const digest = await importLayoutImage(worker, spec.path, spec.digest, signal);
        out[name] = { kind: "image", ref: `${OCI_LAYOUT_REPOSITORY}@${digest}` };
        break;
      }
    }
  }
  return out;
}

interface Descriptor {
  readonly mediaType?: string;
  readonly digest: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Copies the image `digest` (or the layout's only or `latest` image) and everything it references into the content store. */
async function importLayoutImage(worker: Worker, layout: string, digest: string | undefined, signal: AbortSignal): Promise<Digest> {
  const readJson = async <T>(path: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(path, "utf8")) as T;
    } catch (error) {
      throw new BuildContextError(`Cannot read the OCI layout "${layout}": ${(error as Error).message}`, { cause: error });
    }
  };
  let root = digest;
  if (root === undefined) {
    const index = await readJson<{ manifests?: Descriptor[] }>(join(layout, "index.json"));
    const manifests = index.manifests ?? [];
    const tagged = manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === "latest");
    const chosen = tagged ?? (manifests.length === 1 ? manifests[0] : undefined);
    if (chosen === undefined) {
      throw new BuildContextError(`Cannot choose an image in the OCI layout "${layout}": it holds ${manifests.length} and none is tagged "latest"; add @sha256:… to the context`);
    }
    root = chosen.digest;
  }
  const blobPath = (d: string): string => join(layout, "blobs", ...d.split(":"));
  const copy = async (d: string): Promise<void> => {
    signal.throwIfAborted();
    if (await worker.content.has(d as Digest)) return;
    try {
      await worker.content.ingest(createReadStream(blobPath(d)), { expected: d as Digest, signal });
    } catch (error) {
      throw new BuildContextError(`Cannot copy blob "${d}" from the OCI layout "${layout}": ${(error as Error).message}`, { cause: error });
    }
  };
  const visit = async (d: string): Promise<void> => {
    await copy(d);
    const doc = await readJson<{ manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>(blobPath(d));
    for (const child of doc.manifests ?? []) await visit(child.digest);
    if (doc.config !== undefined) await copy(doc.config.digest);
    for (const layer of doc.layers ?? []) await copy(layer.digest);
  };
  await visit(root);
  return root as Digest;
}
