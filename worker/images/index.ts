export { createImageResolver } from "./resolve-image.js";
export type { ImageResolver, ImageResolverDeps } from "./resolve-image.js";
