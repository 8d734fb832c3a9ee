import type { ImageSpec } from "../../solver/llb/index.js";
import type { ContentStore } from "../../worker/content/content-store.js";
import type { Descriptor, Manifest } from "../../worker/oci/index.js";
import type { BuiltImage } from "../image/build-image.js";
import { INLINE_CACHE_KEY, type CacheConfig, type CacheLayer } from "./cache-config.js";
import type { CollectedCache } from "./collect-cache.js";

/**
 * `--export-cache type=inline`: the image with its cache config embedded in its image config
 * under `kiln.cache.v1`, as BuildKit's inline cache embeds `moby.buildkit.cache.v0`. Only records
 * whose every layer is one of the image's own layers (or an empty layer, which needs no blob) are
 * kept, so the image's repository holds every blob the cache names; cache mounts are never
 * inlined. Writes the new config and manifest into `content` and returns the image they make.
 */
export async function addInlineCache(built: BuiltImage, content: ContentStore, cache: CollectedCache): Promise<BuiltImage> {
  const config = inlineConfig(cache.config, new Set(built.layers.map((l) => l.digest)));
  const spec = { ...(JSON.parse((await content.readBytes(built.config.digest)).toString("utf8")) as Record<string, unknown>), [INLINE_CACHE_KEY]: config };
  const configBlob = await content.writeBytes(Buffer.from(JSON.stringify(spec)));
  const configDescriptor: Descriptor = { ...built.config, digest: configBlob.digest, size: configBlob.size };
  const manifest = { ...(JSON.parse((await content.readBytes(built.manifest.digest)).toString("utf8")) as Manifest), config: configDescriptor };
  const manifestBlob = await content.writeBytes(Buffer.from(JSON.stringify(manifest)));
  return {
    ...built,
    manifest: { ...built.manifest, digest: manifestBlob.digest, size: manifestBlob.size },
    config: configDescriptor,
    spec: spec as unknown as ImageSpec,
  };
}

/** The part of `config` that the image's layers (`inImage`, by digest) can carry. */
export function inlineConfig(config: CacheConfig, inImage: ReadonlySet<string>): CacheConfig {
  const carried = new Map<number, boolean>();
  const isCarried = (index: number): boolean => {
    const known = carried.get(index);
    if (known !== undefined) return known;
    const layer: CacheLayer | undefined = config.layers[index];
    const ok = layer !== undefined && (layer.blob === undefined || inImage.has(layer.blob.digest)) && (layer.parent < 0 || isCarried(layer.parent));
    carried.set(index, ok);
    return ok;
  };
  return { version: 1, layers: config.layers, records: config.records.filter((r) => r.results.every(isCarried)), mounts: [] };
}
