export { ExecError, ExecSetupError, EXEC_ERROR_TAIL_LINES } from "./errors.js";
export { DEFAULT_HOSTNAME, generateHosts } from "./hosts.js";
export { generateResolvConf, readHostResolvConf } from "./resolv-conf.js";
export { lookupId, primaryGid, resolveRootfsUser, UserResolveError } from "./rootfs-user.js";
export type { ResolvedUser } from "./rootfs-user.js";
export { createRuncExecutor } from "./runc.js";
export type { RuncExecutorOptions } from "./runc.js";
export { buildRuntimeSpec, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from "./runtime-spec.js";
export type { ExecMount, ExecResult, Executor, ProcessSpec, RunOptions } from "./types.js";
