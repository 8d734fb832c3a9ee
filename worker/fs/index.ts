export { cleanAbsolute, hostPath, lstatEntry, resolveComponents, resolveInRoot, splitPath, SymlinkLoopError } from "./root-path.js";
export type { PathEntry } from "./root-path.js";
