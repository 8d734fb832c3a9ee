import { formatPlatform, KilnError, normalizePlatform, type Platform } from "../../solver/llb/index.js";
import { isIndexMediaType, isManifestMediaType, type Descriptor, type ImageIndex, type Manifest } from "../oci/index.js";

/** An image index has no manifest for the platform a build asked for. */
export class PlatformNotFoundError extends KilnError {
  readonly reference: string;
  readonly platform: Platform;
  readonly available: readonly Platform[];

  constructor(reference: string, platform: Platform, available: readonly Platform[]) {
    const list = available.length === 0 ? "it lists no platforms" : `it has ${available.map((p) => `"${formatPlatform(p)}"`).join(", ")}`;
    super("KILN_IMAGE_PLATFORM_NOT_FOUND", `Cannot use image "${reference}" for platform "${formatPlatform(platform)}": ${list}`);
    this.reference = reference;
    this.platform = platform;
    this.available = available;
  }
}

/**
 * Picks the manifest of `index` for `platform`, the way containerd's platform matcher does:
 * platforms are normalised first (`aarch64` = `arm64`, `arm64/v8` = `arm64`); an exact match
 * wins; for 32-bit arm a lower variant runs on a higher one (v7 runs v6 and v5 images), and the
 * highest such variant is chosen. Entries that are not image manifests (nested indexes,
 * attestations with platform `unknown/unknown`) are skipped. An index whose only manifest has no
 * platform yields that manifest. Throws PlatformNotFoundError listing what the index has.
 */
export function selectManifest(index: ImageIndex, platform: Platform, reference: string): Descriptor {
  const wanted = normalizePlatform(platform);
  const candidates = index.manifests.filter((d) => d.mediaType === undefined || isManifestMediaType(d.mediaType));
  const withPlatform = candidates.filter((d) => d.platform !== undefined && d.platform.os !== "unknown");
  const exact = withPlatform.find((d) => formatPlatform(normalizePlatform(d.platform!)) === formatPlatform(wanted));
  if (exact !== undefined) return exact;
  if (wanted.architecture === "arm" && wanted.os === "linux") {
    const rank = armVariantRank(wanted.variant);
    const compatible = withPlatform
      .map((d) => ({ d, p: normalizePlatform(d.platform!) }))
      .filter(({ p }) => p.os === wanted.os && p.architecture === "arm" && armVariantRank(p.variant) <= rank)
      .sort((a, b) => armVariantRank(b.p.variant) - armVariantRank(a.p.variant));
    if (compatible[0] !== undefined) return compatible[0].d;
  }
  if (candidates.length === 1 && candidates[0]!.platform === undefined) return candidates[0]!;
  throw new PlatformNotFoundError(reference, wanted, withPlatform.map((d) => normalizePlatform(d.platform!)));
}

function armVariantRank(variant: string | undefined): number {
  const match = /^v(\d+)$/.exec(variant ?? "v7");
  return match === null ? 0 : Number(match[1]);
}

/** A parsed manifest document: an image manifest or an index (OCI index or Docker manifest list). */
export type ManifestDocument = { readonly kind: "manifest"; readonly manifest: Manifest } | { readonly kind: "index"; readonly index: ImageIndex };

/** Why a manifest document could not be read. */
export class ManifestFormatError extends KilnError {
  constructor(what: string, reason: string, options?: { cause?: unknown }) {
    super("KILN_MANIFEST_INVALID", `Cannot read ${what}: ${reason}`, options);
  }
}

/**
 * Parses manifest bytes. The kind comes from the document's `mediaType`, else from
 * `contentType` (the HTTP header or descriptor media type), else from its shape. Docker schema 1
 * and anything else unknown is refused with ManifestFormatError.
 */
export function parseManifestDocument(bytes: Uint8Array, contentType: string | undefined, what: string): ManifestDocument {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new ManifestFormatError(what, "it is not JSON", { cause: error });
  }
  if (typeof value !== "object" || value === null) throw new ManifestFormatError(what, "it is not a JSON object");
  const doc = value as Record<string, unknown>;
  const declared = typeof doc["mediaType"] === "string" ? doc["mediaType"] : contentType?.split(";")[0]?.trim();
  if (doc["schemaVersion"] === 1) throw new ManifestFormatError(what, "Docker schema 1 manifests are not supported");
  const looksLikeIndex = Array.isArray(doc["manifests"]);
  const looksLikeManifest = typeof doc["config"] === "object" && doc["config"] !== null && Array.isArray(doc["layers"]);
  // A known media type decides; the shape must then agree. Without one, the shape decides.
  const kind = declared !== undefined && isIndexMediaType(declared) ? "index"
    : declared !== undefined && isManifestMediaType(declared) ? "manifest"
    : looksLikeManifest ? "manifest"
    : looksLikeIndex ? "index"
    : undefined;
  if (kind === "index") {
    if (!looksLikeIndex) throw new ManifestFormatError(what, `it says "${declared}" but has no "manifests" list`);
    return { kind: "index", index: value as ImageIndex };
  }
  if (kind === "manifest") {
    if (!looksLikeManifest) throw new ManifestFormatError(what, `it says "${declared}" but has no "config" and "layers"`);
    return { kind: "manifest", manifest: value as Manifest };
  }
  throw new ManifestFormatError(what, `media type "${declared ?? "(none)"}" is neither an image manifest nor an index`);
}
