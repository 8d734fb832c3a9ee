import { formatPlatform, parsePlatform, samePlatform, type Platform } from "../../solver/llb/index.js";
import { ExportError } from "../errors.js";

/**
 * Where an annotation goes, as BuildKit names it: on an image manifest, on the descriptor of a
 * manifest (an index's entry, or the layout's index.json entry of a single-platform image), on the
 * index, or on the index's descriptor (the layout's index.json entry of a multi-platform image).
 */
export type AnnotationTarget = "manifest" | "manifest-descriptor" | "index" | "index-descriptor";

/** One `annotation…` exporter option. `platform` (manifest targets only) limits it to that platform's manifest. */
export interface ImageAnnotation {
  readonly target: AnnotationTarget;
  readonly platform?: Platform;
  readonly key: string;
  readonly value: string;
}

const PREFIX = /^annotation[-.[]/;
const SHAPE = /^annotation(?:-([a-z-]+))?(?:\[([A-Za-z0-9_/-]+)\])?\.(\S+)$/;

/**
 * Parses an exporter option key the way BuildKit's ParseAnnotationKey does:
 * `annotation.KEY` (= `annotation-manifest.KEY`), `annotation-manifest.KEY`,
 * `annotation-manifest-descriptor.KEY`, `annotation-index.KEY`, `annotation-index-descriptor.KEY`,
 * and the manifest ones with a platform, `annotation-manifest[linux/arm64].KEY`. Returns undefined
 * for a key that is not an annotation option; throws ExportError for one that is malformed.
 */
export function parseAnnotationOption(option: string, value: string): ImageAnnotation | undefined {
  if (!PREFIX.test(option)) return undefined;
  const groups = SHAPE.exec(option);
  if (groups === null) throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot parse annotation option "${option}": expected annotation[-TYPE][[PLATFORM]].KEY=VALUE`);
  const [, type = "", platformText, key = ""] = groups;
  const target = type === "" ? "manifest" : type;
  if (target !== "manifest" && target !== "manifest-descriptor" && target !== "index" && target !== "index-descriptor") {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use annotation option "${option}": unknown type "${type}"; use manifest, manifest-descriptor, index or index-descriptor`);
  }
  if (platformText === undefined) return { target, key, value };
  if (target === "index" || target === "index-descriptor") {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use annotation option "${option}": only manifest annotations can name a platform`);
  }
  let platform: Platform;
  try {
    platform = parsePlatform(platformText);
  } catch (error) {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use annotation option "${option}": ${(error as Error).message}`, { cause: error });
  }
  return { target, platform, key, value };
}

/**
 * The annotations of `target` that apply to `platform` (an annotation without a platform applies
 * to every one), keys sorted so that the JSON they end up in is stable; undefined when none apply.
 * A later option with the same key wins.
 */
export function annotationsFor(annotations: readonly ImageAnnotation[], target: AnnotationTarget, platform?: Platform): Readonly<Record<string, string>> | undefined {
  const picked = new Map<string, string>();
  for (const a of annotations) {
    if (a.target !== target) continue;
    if (a.platform !== undefined && (platform === undefined || !samePlatform(a.platform, platform))) continue;
    picked.set(a.key, a.value);
  }
  if (picked.size === 0) return undefined;
  return Object.fromEntries([...picked].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The option key an annotation was given as, for messages. */
export function annotationOptionName(annotation: ImageAnnotation): string {
  const type = annotation.target === "manifest" ? "" : `-${annotation.target}`;
  const platform = annotation.platform === undefined ? "" : `[${formatPlatform(annotation.platform)}]`;
  return `annotation${type}${platform}.${annotation.key}`;
}
