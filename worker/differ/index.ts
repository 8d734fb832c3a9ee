export { diffSnapshot, DiffError } from "./diff.js";
export type { DiffOptions } from "./diff.js";
export { layerSources } from "./layer-sources.js";
