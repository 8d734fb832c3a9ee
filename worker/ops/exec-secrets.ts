import { chmod, chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256, type SecretMount, type SshMount } from "../../solver/llb/index.js";
import { mount, MountFlags } from "../syscalls.js";
import { ExecMountError } from "./exec-mounts.js";

/** Where a build's secret comes from: a file on the client's machine, or an environment variable of the kiln process. */
export type SecretSource = { readonly file: string } | { readonly env: string };

/** An SSH agent a build may forward: the path of its unix socket (`$SSH_AUTH_SOCK`). */
export interface SshSource {
  readonly socket: string;
}

/** The bytes of secret `id`, or undefined when the build was given no secret of that id. */
export async function readSecret(id: string, sources: Readonly<Record<string, SecretSource>> | undefined): Promise<Buffer | undefined> {
  const source = sources?.[id];
  if (source === undefined) return undefined;
  if ("file" in source) {
    try {
      return await readFile(source.file);
    } catch (error) {
      throw new ExecMountError(`Cannot mount secret "${id}": its source file "${source.file}" cannot be read: ${(error as Error).message}`);
    }
  }
  const value = process.env[source.env];
  if (value === undefined) throw new ExecMountError(`Cannot mount secret "${id}": the environment variable "${source.env}" is not set`);
  return Buffer.from(value);
}

/**
 * A tmpfs holding one RUN's secret files (BuildKit's secret mounts work the same way): secrets
 * never touch a disk, a snapshot or a layer. The caller owns the mount at `dir` and unmounts it
 * when the RUN ends.
 */
export class SecretFiles {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates `dir` and mounts a fresh tmpfs there. */
  static async mount(dir: string): Promise<SecretFiles> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    mount("tmpfs", dir, "tmpfs", MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC, "mode=0755,size=16m");
    return new SecretFiles(dir);
  }

  /** Writes `value` for `mount` (mode, uid, gid as the mount says) and returns the host file to bind. */
  async write(mount: SecretMount, value: Buffer): Promise<string> {
    // Named by a hash: the id is user text, and two mounts of one id may differ in mode or owner.
    const file = join(this.dir, sha256(`${mount.id}\0${mount.target ?? ""}`).slice(7, 39));
    await writeFile(file, value, { mode: 0o600 });
    await chown(file, mount.uid, mount.gid);
    await chmod(file, mount.mode);
    return file;
  }
}

/** The agent socket for an ssh mount, or undefined when the build was given none of that id. */
export function sshSocket(mount: SshMount, sources: Readonly<Record<string, SshSource>> | undefined): string | undefined {
  return sources?.[mount.id]?.socket;
}
