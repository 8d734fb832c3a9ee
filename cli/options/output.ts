import { resolve } from "node:path";
import { parseAnnotationOption, type ImageAnnotation } from "../../exporter/index.js";
import { isKilnError } from "../../solver/llb/index.js";
import type { LayerCompression } from "../../worker/index.js";
import { UsageError } from "./usage-error.js";

/**
 * How an image output makes its image, BuildKit's image exporter options: `compression`
 * (default gzip), `compression-level`, `force-compression`, `oci-mediatypes` (default true, false
 * for `type=docker`), `rewrite-timestamp` and the `annotation…` options.
 */
export interface ImageOutputOptions {
  readonly compression: LayerCompression;
  readonly compressionLevel: number | undefined;
  readonly forceCompression: boolean;
  readonly ociMediaTypes: boolean;
  readonly rewriteTimestamp: boolean;
  readonly annotations: readonly ImageAnnotation[];
  /** Options accepted but without effect in kiln (`unpack`), for a warning. */
  readonly ignored: readonly string[];
}

/** Where a build's result goes (`--output`/`-o`), resolved. */
export type OutputSpec =
  | { readonly type: "oci"; readonly dest: string; readonly tar: boolean; readonly names: readonly string[]; readonly image: ImageOutputOptions }
  | { readonly type: "docker"; readonly dest: string; readonly names: readonly string[]; readonly image: ImageOutputOptions }
  | {
      readonly type: "image";
      readonly names: readonly string[];
      readonly push: boolean;
      readonly pushByDigest: boolean;
      readonly image: ImageOutputOptions;
    }
  /** The final filesystem into a directory. */
  | { readonly type: "local"; readonly dest: string }
  /** The final filesystem as one tar; `dest` "-" is standard output. */
  | { readonly type: "tar"; readonly dest: string };

/**
 * Parses one `--output` value as docker buildx and buildctl take it: `type=oci,dest=out.tar`,
 * `type=image,name=a,name=b,push=true`, `type=registry,name=…` (an image that is pushed),
 * `type=local,dest=DIR`, `type=tar,dest=FILE`. As in buildx, a bare value without `=` is a
 * destination: `-` means a tar of the filesystem on standard output, anything else a local directory.
 */
export function parseOutput(text: string): OutputSpec {
  if (!text.includes("=")) {
    if (text === "") throw new UsageError("Cannot use an empty output");
    return text === "-" ? { type: "tar", dest: "-" } : { type: "local", dest: resolve(text) };
  }
  const fields = new Map<string, string[]>();
  for (const part of splitCsv(text)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot parse output "${text}": "${part}" is not key=value`);
    // Annotation keys keep their case (they are OCI annotation names); other keys are case-insensitive.
    const rawKey = part.slice(0, eq).trim();
    const key = /^annotation/i.test(rawKey) ? rawKey : rawKey.toLowerCase();
    fields.set(key, [...(fields.get(key) ?? []), part.slice(eq + 1)]);
  }
  const one = (key: string): string | undefined => fields.get(key)?.at(-1);
  const names = (fields.get("name") ?? []).flatMap((n) => n.split(",")).filter((n) => n !== "");
  const type = one("type");
  const dest = (): string => {
    const value = one("dest");
    if (value === undefined || value === "") throw new UsageError(`Cannot use output "${text}": type=${type} needs dest=${type === "local" ? "DIR" : "FILE"}`);
    return value;
  };
  switch (type) {
    case "oci":
      return { type, dest: resolve(dest()), tar: parseBool(one("tar") ?? "true", text), names, image: imageOptions(fields, text, true) };
    case "docker":
      return { type, dest: resolve(dest()), names, image: imageOptions(fields, text, false) };
    case "image":
    case "registry": {
      const push = type === "registry" || parseBool(one("push") ?? "false", text);
      const pushByDigest = parseBool(one("push-by-digest") ?? "false", text);
      if (push && names.length === 0) throw new UsageError(`Cannot use output "${text}": pushing needs name=REGISTRY/REPOSITORY[:TAG]`);
      return { type: "image", names, push, pushByDigest, image: imageOptions(fields, text, true) };
    }
    case "local":
      return { type, dest: resolve(dest()) };
    case "tar": {
      const value = dest();
      return { type, dest: value === "-" ? "-" : resolve(value) };
    }
    case undefined:
      throw new UsageError(`Cannot use output "${text}": it has no type=`);
    default:
      throw new UsageError(`Cannot use output "${text}": unknown type "${type}"; kiln writes "oci", "docker", "image", "registry", "local" and "tar"`);
  }
}

const COMPRESSIONS: readonly LayerCompression[] = ["gzip", "zstd", "uncompressed"];

/** The image exporter options of an output; `ociDefault` is oci-mediatypes when not given. */
function imageOptions(fields: ReadonlyMap<string, readonly string[]>, text: string, ociDefault: boolean): ImageOutputOptions {
  const one = (key: string): string | undefined => fields.get(key)?.at(-1);
  const compression = one("compression") ?? "gzip";
  if (!(COMPRESSIONS as readonly string[]).includes(compression)) {
    throw new UsageError(`Cannot use output "${text}": unknown compression "${compression}"; choose gzip, zstd or uncompressed`);
  }
  const levelText = one("compression-level");
  const level = levelText === undefined ? undefined : Number(levelText);
  if (level !== undefined && (levelText?.trim() === "" || !Number.isInteger(level))) {
    throw new UsageError(`Cannot use output "${text}": compression-level "${levelText}" is not a whole number`);
  }
  const annotations: ImageAnnotation[] = [];
  for (const [key, values] of fields) {
    for (const value of values) {
      try {
        const annotation = parseAnnotationOption(key, value);
        if (annotation !== undefined) annotations.push(annotation);
      } catch (error) {
        throw isKilnError(error) ? new UsageError(`Cannot use output "${text}": ${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}`) : error;
      }
    }
  }
  const ociText = one("oci-mediatypes");
  return {
    compression: compression as LayerCompression,
    compressionLevel: level,
    forceCompression: parseBool(one("force-compression") ?? "false", text),
    // zstd has no Docker media type: as in BuildKit, zstd layers make an OCI image.
    ociMediaTypes: compression === "zstd" ? true : parseBool(ociText ?? String(ociDefault), text),
    rewriteTimestamp: parseBool(one("rewrite-timestamp") ?? "false", text),
    annotations,
    ignored: fields.has("unpack") ? ["unpack"] : [],
  };
}

function parseBool(value: string, text: string): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new UsageError(`Cannot parse output "${text}": "${value}" is not true or false`);
}

/** Splits on commas outside double quotes, as BuildKit's csvvalue does. */
function splitCsv(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === "," && !quoted) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.filter((p) => p !== "");
}
