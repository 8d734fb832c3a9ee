import type { HistoryEntry, ImageConfig, ImageMetadata, ImageSpec } from "../../solver/llb/index.js";
import { ExportError } from "../errors.js";

export interface ImageSpecInput {
  readonly image: ImageMetadata;
  /** Diff ids of the layers in the image, base first (dropped empty layers already left out). */
  readonly diffIds: readonly string[];
  /** History already normalised against those layers. */
  readonly history: readonly HistoryEntry[];
  /** RFC 3339 creation time. */
  readonly created: string;
}

/**
 * The image configuration file: platform fields from `image.platform`, the runtime `config`,
 * `rootfs.diff_ids` and `history`. Keys are written in the OCI spec's field order and map-like
 * fields (Labels, ExposedPorts, Volumes) with sorted keys, as Go's encoder does, so equal input
 * gives equal bytes whatever order the frontend built the objects in.
 */
export function buildImageSpec(input: ImageSpecInput): ImageSpec {
  const { platform } = input.image;
  if (platform.os === "" || platform.architecture === "") {
    throw new ExportError("KILN_EXPORT_INVALID_IMAGE", `Cannot build an image config for platform "${platform.os}/${platform.architecture}": os and architecture are required`);
  }
  return {
    created: input.created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: orderConfig(input.image.config),
    rootfs: { type: "layers", diff_ids: [...input.diffIds] },
    history: input.history.map(orderHistory),
  };
}

/** The bytes stored for a config: compact JSON of the spec, as BuildKit writes it. */
export function serializeImageSpec(spec: ImageSpec): Buffer {
  return Buffer.from(JSON.stringify(spec), "utf8");
}

const CONFIG_KEYS = [
  "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal", "ArgsEscaped",
  "Healthcheck", "OnBuild", "Shell",
] as const satisfies readonly (keyof ImageConfig)[];
const MAP_KEYS: ReadonlySet<string> = new Set(["ExposedPorts", "Volumes", "Labels"]);

function orderConfig(config: ImageConfig): ImageConfig {
  const source = config as Readonly<Record<string, unknown>>;
  const ordered: Record<string, unknown> = {};
  const known: readonly string[] = CONFIG_KEYS;
  for (const key of [...known, ...Object.keys(source).filter((k) => !known.includes(k)).sort()]) {
    const value = source[key];
    if (value === undefined) continue;
    ordered[key] = MAP_KEYS.has(key) ? sortKeys(value as Record<string, unknown>) : value;
  }
  return ordered as ImageConfig;
}

function orderHistory(line: HistoryEntry): HistoryEntry {
  return {
    ...(line.created === undefined ? {} : { created: line.created }),
    ...(line.created_by === undefined ? {} : { created_by: line.created_by }),
    ...(line.author === undefined ? {} : { author: line.author }),
    ...(line.comment === undefined ? {} : { comment: line.comment }),
    ...(line.empty_layer === true ? { empty_layer: true } : {}),
  };
}

function sortKeys(map: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(map).sort().map((key) => [key, map[key]]));
}
