import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { assertNever, KilnError, opCacheDigest, type ExecOp, type Mount, type ProxyEnv } from "../../solver/llb/index.js";
import type { CacheMap, OpContext, OpRunner, ResultRef, SolverVertex } from "../../solver/op.js";
import type { ExecMount, Executor, ProcessSpec } from "../executor/index.js";
import { ownerTag } from "../process-owner.js";
import { mountSnapshot, unmountSnapshot } from "../snapshotter/mount.js";
import type { ActiveSnapshot, SnapshotMount, Snapshotter } from "../snapshotter/types.js";
import { CacheMounts, ExecMountError, selectInTree } from "./exec-mounts.js";
import { readSecret, SecretFiles, sshSocket, type SecretSource, type SshSource } from "./exec-secrets.js";
import { notAllowed, opEntitlements, type Entitlement } from "./entitlements.js";

export interface ExecRunnerDeps {
  readonly snapshotter: Snapshotter;
  readonly executor: Executor;
  /** Where RUN mount points (`exec/`) and persistent cache mounts (`cache-mounts/`) live. */
  readonly stateDir: string;
  /**
   * The cache-mount directories, shared by every exec runner of a worker so that `locked` and
   * `private` sharing see each other's RUNs. Default: one of its own under `stateDir/cache-mounts`.
   */
  readonly cacheMounts?: CacheMounts;
  /** The build's secrets by id (`--secret`); a secret mount with no source here is skipped, or fails when required. */
  readonly secrets?: Readonly<Record<string, SecretSource>>;
  /** The build's SSH agents by id (`--ssh`). */
  readonly ssh?: Readonly<Record<string, SshSource>>;
  /** What the build was granted (`--allow`): an op needing more is refused before it runs. */
  readonly entitlements?: readonly Entitlement[];
}

/** An exec op that cannot be run as written. */
export class ExecOpError extends KilnError {
  constructor(message: string) {
    super("KILN_EXEC_OP_INVALID", message);
  }
}

/**
 * The runner of an exec op (RUN).
 *
 * Cache map: `opCacheDigest` (the op without its inputs and proxy settings), and each input contributes its own cache key.
 *
 * Run: prepares a writable snapshot on the root mount's input (scratch when null) and mounts it
 * as the rootfs; bind mounts get a read-only view of their input, or a writable snapshot when
 * they are writable (kept as an output when the mount has an output index, thrown away
 * otherwise); cache mounts use a persistent directory per id; tmpfs mounts are the runtime's.
 * The process's output streams to `progress.log`. On exit 0 every output snapshot is committed
 * and the results come back in output order; on failure or abort (the executor's ExecError or
 * the signal's reason is rethrown) every snapshot is aborted. Either way everything mounted is
 * unmounted and the mount points removed before `run` settles.
 */
export function createExecRunner(deps: ExecRunnerDeps, vertex: SolverVertex): OpRunner {
  const op = vertex.op;
  if (op.kind !== "exec") throw new ExecOpError(`Cannot run vertex "${vertex.digest}" as an exec op: it is a "${op.kind}" op`);
  const rootIndex = op.mounts.findIndex((m) => m.type === "bind" && m.target === "/");
  if (rootIndex === -1) throw new ExecOpError(`Cannot run exec op "${vertex.digest}": it has no bind mount at "/" for the root filesystem`);
  for (const needed of opEntitlements(op)) {
    if (!(deps.entitlements ?? []).includes(needed)) throw notAllowed(needed, `exec op "${vertex.digest}"`);
  }
  const caches = deps.cacheMounts ?? new CacheMounts(join(deps.stateDir, "cache-mounts"));

  return {
    cacheMap(): Promise<CacheMap> {
      return Promise.resolve({ digest: opCacheDigest(op), deps: op.inputs.map(() => ({})) });
    },

    async run(inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      context.signal.throwIfAborted();
      const session = new ExecSession(deps, caches, op, inputs, context.signal);
      try {
        const { rootfs, mounts, outputs, env } = await session.prepare(rootIndex);
        await deps.executor.run(rootfs, processSpec(op, env), mounts, {
          signal: context.signal,
          stdout: (data) => context.progress.log("stdout", data),
          stderr: (data) => context.progress.log("stderr", data),
        });
        session.unmountAll();
        const results: ResultRef[] = [];
        for (const [index, active] of outputs) {
          results[index] = { id: await deps.snapshotter.commit(active) };
          session.forget(active);
        }
        for (let i = 0; i < results.length; i++) {
          if (results[i] === undefined) throw new ExecOpError(`Cannot run exec op "${vertex.digest}": no mount produces output ${i}`);
        }
        return results;
      } finally {
        await session.close();
      }
    },
  };
}

/** The process of `op`, with `extraEnv` (secrets as env, SSH_AUTH_SOCK) added where the op does not set the name. */
function processSpec(op: ExecOp, extraEnv: readonly string[] = []): ProcessSpec {
  const names = new Set(op.meta.env.map((e) => e.slice(0, e.indexOf("="))));
  const added = [...extraEnv, ...proxyEnvList(op.meta.proxyEnv)].filter((e) => !names.has(e.slice(0, e.indexOf("="))));
  return {
    args: op.meta.args,
    env: [...op.meta.env, ...added],
    cwd: op.meta.cwd,
    user: op.meta.user,
    network: op.network,
    security: op.security,
    ...(op.meta.hostname === undefined ? {} : { hostname: op.meta.hostname }),
  };
}

/** An exec op's proxy settings as process environment, each in both spellings (BuildKit's proxyEnvList). */
export function proxyEnvList(proxy: ProxyEnv | undefined): string[] {
  if (proxy === undefined) return [];
  const out: string[] = [];
  const add = (name: string, value: string | undefined): void => {
    if (value !== undefined && value !== "") out.push(`${name}=${value}`, `${name.toLowerCase()}=${value}`);
  };
  add("HTTP_PROXY", proxy.httpProxy);
  add("HTTPS_PROXY", proxy.httpsProxy);
  add("FTP_PROXY", proxy.ftpProxy);
  add("NO_PROXY", proxy.noProxy);
  add("ALL_PROXY", proxy.allProxy);
  return out;
}

/** The snapshots, mounts and leases of one exec run, released in reverse order by `close()`. */
class ExecSession {
  readonly #deps: ExecRunnerDeps;
  readonly #caches: CacheMounts;
  readonly #op: ExecOp;
  readonly #inputs: readonly ResultRef[];
  readonly #signal: AbortSignal;
  readonly #actives: ActiveSnapshot[] = [];
  readonly #mounted: string[] = [];
  readonly #releases: (() => void)[] = [];
  #workDir: string | undefined;
  #secrets: SecretFiles | undefined;
  /** Environment the mounts add (env secrets, SSH_AUTH_SOCK). */
  readonly #env: string[] = [];

  constructor(deps: ExecRunnerDeps, caches: CacheMounts, op: ExecOp, inputs: readonly ResultRef[], signal: AbortSignal) {
    this.#deps = deps;
    this.#caches = caches;
    this.#op = op;
    this.#inputs = inputs;
    this.#signal = signal;
  }

  async prepare(rootIndex: number): Promise<{ rootfs: string; mounts: ExecMount[]; outputs: Map<number, ActiveSnapshot>; env: string[] }> {
    const execDir = join(this.#deps.stateDir, "exec");
    await mkdir(execDir, { recursive: true, mode: 0o700 });
    // The owner tag lets the next kiln on this root unmount and remove it if this process dies.
    this.#workDir = await mkdtemp(join(execDir, `run-${ownerTag()}-`));
    const outputs = new Map<number, ActiveSnapshot>();
    const root = this.#op.mounts[rootIndex] as Mount & { type: "bind" };
    const rootActive = await this.#prepareActive(root.input);
    const rootfs = await this.#mount(rootActive.mount, "rootfs");
    if (root.output !== null) outputs.set(root.output, rootActive);

    const mounts: ExecMount[] = [];
    for (const [index, mount] of this.#op.mounts.entries()) {
      if (index === rootIndex) continue;
      this.#signal.throwIfAborted();
      const made = await this.#execMount(mount, index, outputs);
      if (made !== undefined) mounts.push(made);
    }
    return { rootfs, mounts, outputs, env: this.#env };
  }

  async #execMount(mount: Mount, index: number, outputs: Map<number, ActiveSnapshot>): Promise<ExecMount | undefined> {
    switch (mount.type) {
      case "bind": {
        let dir: string;
        if (mount.readonly && mount.output === null) {
          dir = await this.#mount(await this.#deps.snapshotter.view(this.#inputId(mount.input)), `m${index}`);
        } else {
          const active = await this.#prepareActive(mount.input);
          dir = await this.#mount(active.mount, `m${index}`);
          if (mount.output !== null) outputs.set(mount.output, active);
        }
        return { kind: "bind", source: selectInTree(dir, mount.selector), target: mount.target, readonly: mount.readonly };
      }
      case "cache": {
        let seed: string | undefined;
        if (mount.input !== null) {
          const dir = await this.#mount(await this.#deps.snapshotter.view(this.#inputId(mount.input)), `m${index}`);
          seed = selectInTree(dir, mount.selector);
        }
        const lease = await this.#caches.acquire(mount, seed, this.#signal);
        this.#releases.push(() => lease.release());
        return { kind: "bind", source: lease.dir, target: mount.target, readonly: mount.readonly };
      }
      case "tmpfs":
        return { kind: "tmpfs", target: mount.target, ...(mount.size === undefined ? {} : { size: mount.size }) };
      case "secret": {
        const value = await readSecret(mount.id, this.#deps.secrets);
        if (value === undefined) {
          if (mount.required) throw new ExecMountError(`Cannot mount secret "${mount.id}": the build was given no secret of that id`);
          return undefined;
        }
        if (mount.env !== undefined) this.#env.push(`${mount.env}=${value.toString("utf8")}`);
        if (mount.target === undefined) return undefined;
        const file = await (await this.#secretFiles()).write(mount, value);
        return { kind: "bind", source: file, target: mount.target, readonly: true };
      }
      case "ssh": {
        const socket = sshSocket(mount, this.#deps.ssh);
        if (socket === undefined) {
          if (mount.required) throw new ExecMountError(`Cannot mount ssh agent "${mount.id}": the build was given no ssh agent of that id`);
          return undefined;
        }
        // As BuildKit's llb: the first forwarded agent is the RUN's SSH_AUTH_SOCK.
        if (!this.#env.some((e) => e.startsWith("SSH_AUTH_SOCK="))) this.#env.push(`SSH_AUTH_SOCK=${mount.target}`);
        return { kind: "bind", source: socket, target: mount.target, readonly: false };
      }
      default:
        return assertNever(mount, "mount");
    }
  }

  /** The tmpfs for this RUN's secret files, mounted on first use and unmounted with the rest. */
  async #secretFiles(): Promise<SecretFiles> {
    if (this.#secrets === undefined) {
      this.#secrets = await SecretFiles.mount(join(this.#workDir as string, "secrets"));
      this.#mounted.push(this.#secrets.dir);
    }
    return this.#secrets;
  }

  #inputId(input: number | null): string | null {
    if (input === null) return null;
    const ref = this.#inputs[input];
    if (ref === undefined) throw new ExecOpError(`Cannot run exec op: mount input ${input} has no result (${this.#inputs.length} inputs given)`);
    return ref.id;
  }

  async #prepareActive(input: number | null): Promise<ActiveSnapshot> {
    const active = await this.#deps.snapshotter.prepare(this.#inputId(input));
    this.#actives.push(active);
    return active;
  }

  async #mount(snapshot: SnapshotMount, name: string): Promise<string> {
    const dir = join(this.#workDir as string, name);
    await mkdir(dir, { recursive: true });
    mountSnapshot(snapshot, dir);
    this.#mounted.push(dir);
    return dir;
  }

  /** Unmounts everything mounted so far, innermost last-mounted first. */
  unmountAll(): void {
    let first: unknown;
    while (this.#mounted.length > 0) {
      const dir = this.#mounted.pop() as string;
      try {
        unmountSnapshot(dir);
      } catch (error) {
        first ??= error;
      }
    }
    if (first !== undefined) throw first;
  }

  /** Stops tracking a snapshot that was committed (close() must not abort it). */
  forget(committed: ActiveSnapshot): void {
    const i = this.#actives.indexOf(committed);
    if (i !== -1) this.#actives.splice(i, 1);
  }

  /** Unmounts, releases cache mounts, aborts uncommitted snapshots and removes the mount points. */
  async close(): Promise<void> {
    let unmounted = false;
    try {
      this.unmountAll();
      unmounted = true;
    } finally {
      for (const release of this.#releases.splice(0)) release();
      for (const active of this.#actives.splice(0).reverse()) await this.#deps.snapshotter.abort(active).catch(() => {});
      // Never recurse into a mount point that is still mounted: it would delete snapshot content.
      if (unmounted && this.#workDir !== undefined) await rm(this.#workDir, { recursive: true, force: true });
    }
  }
}
