export type { Descriptor, ImageIndex, Manifest } from "./descriptor.js";
export { isIndexMediaType, isManifestMediaType, layerCompression, MediaTypes } from "./media-types.js";
export type { LayerCompression } from "./media-types.js";
export { familiarReference, formatReference, isLoopbackDomain, parseReference, ReferenceError, withDigest } from "./reference.js";
export type { Reference } from "./reference.js";
