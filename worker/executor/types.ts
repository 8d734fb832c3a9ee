import type { NetworkMode, SecurityMode } from "../../solver/llb/index.js";

/**
 * The process a RUN starts, as the executor takes it. `user` is USER's text (`name`, `uid`,
 * `name:group`, `uid:gid`; empty means root), resolved against the rootfs's /etc/passwd and
 * /etc/group. `cwd` is created (0755, root-owned, as BuildKit does) when missing.
 */
export interface ProcessSpec {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user: string;
  /** Absent: the sandbox's default name. */
  readonly hostname?: string;
  /**
   * `none`: a fresh network namespace with only `lo`. `host` and `default`: the host's network
   * (BuildKit's `default` is a CNI-managed namespace; kiln has no CNI yet, so it shares the host's).
   */
  readonly network: NetworkMode;
  /** Extra `/etc/hosts` lines (`NAME IP`, as `--add-host` gives). */
  readonly extraHosts?: readonly { readonly host: string; readonly ip: string }[];
  /**
   * `sandbox` (default): Docker's default capabilities and seccomp profile. `insecure`: privileged
   * (see buildRuntimeSpec); the executor does not check the entitlement, its caller does.
   */
  readonly security?: SecurityMode;
}

/**
 * What the container sees besides its rootfs. Binds name a host directory or file that stays
 * valid until `run` settles (the caller owns it); tmpfs mounts live and die with the process.
 */
export type ExecMount =
  | { readonly kind: "bind"; readonly source: string; readonly target: string; readonly readonly: boolean }
  | { readonly kind: "tmpfs"; readonly target: string; readonly size?: number };

export interface RunOptions {
  /** Aborting kills the container (SIGKILL) and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Output as it arrives, decoded as UTF-8 (chunks never split a character). */
  readonly stdout?: (data: string) => void;
  readonly stderr?: (data: string) => void;
}

export interface ExecResult {
  readonly exitCode: 0;
}

/**
 * Runs one process in a sandbox whose root is the directory `rootfs` (already mounted and
 * writable; the executor writes only what the process writes, plus `cwd` when missing). Resolves
 * when the process exits 0; rejects with ExecError on any other exit, with ExecSetupError when
 * it cannot start. When `run` settles, no container, runc state or bundle is left behind, and
 * mount stubs the runtime had to create in `rootfs` (an empty /etc/hosts on a scratch tree) are gone.
 */
export interface Executor {
  run(rootfs: string, process: ProcessSpec, mounts: readonly ExecMount[], options?: RunOptions): Promise<ExecResult>;
}
