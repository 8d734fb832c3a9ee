export { contentChecksum, hashFile, statCacheName } from "./content-checksum.js";
export type { ChecksumOptions } from "./content-checksum.js";
export { selectEntries, visitEntries } from "./selection.js";
export type { SelectedEntry, Selection } from "./selection.js";
export { RACY_MS, StatCache } from "./stat-cache.js";
export { ContentIndex, ContentIndexWriter, contentIndexFile } from "./content-index.js";
export type { ContentHashes } from "./content-index.js";
