export { isRootlessChild, needsRootlessReexec, reexecRootless, ROOTLESS_ENV } from "./reexec.js";
export type { ReexecOptions } from "./reexec.js";
export { assertSubordinateIds, freeRangeStart, parseSubordinateIds, rangesOf, RootlessError, SUBID_COUNT } from "./subid.js";
export type { SubidFiles, SubidUser, SubordinateRange } from "./subid.js";
