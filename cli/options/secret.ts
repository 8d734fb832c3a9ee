import { isAbsolute, resolve } from "node:path";
import type { SecretSource, SshSource } from "../../worker/index.js";
import { UsageError } from "./usage-error.js";

/**
 * Parses docker build's `--secret` values into sources by id: `id=ID,src=FILE` (also `source=`,
 * `type=file`), `id=ID,env=VAR` (also `type=env` with `src=VAR`), and `id=ID` alone, which reads
 * the environment variable ID when it is set and the file ID otherwise (as buildx does).
 * Relative files are taken from `cwd`.
 */
export function parseSecretFlags(values: readonly string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Record<string, SecretSource> {
  const secrets: Record<string, SecretSource> = {};
  for (const value of values) {
    const fields: Record<string, string> = {};
    for (const part of value.split(",")) {
      const eq = part.indexOf("=");
      if (eq < 0) throw new UsageError(`Cannot use --secret "${value}": "${part}" is not KEY=VALUE`);
      fields[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1);
    }
    const id = fields["id"];
    if (id === undefined || id === "") throw new UsageError(`Cannot use --secret "${value}": it needs id=ID`);
    const type = fields["type"];
    const src = fields["src"] ?? fields["source"];
    if (type !== undefined && type !== "file" && type !== "env") throw new UsageError(`Cannot use --secret "${value}": type must be file or env, not "${type}"`);
    if (fields["env"] !== undefined) secrets[id] = { env: fields["env"] };
    else if (type === "env") secrets[id] = { env: src ?? id };
    else if (src !== undefined) secrets[id] = { file: isAbsolute(src) ? src : resolve(cwd, src) };
    else if (type !== "file" && env[id] !== undefined) secrets[id] = { env: id };
    else secrets[id] = { file: resolve(cwd, id) };
  }
  return secrets;
}

/**
 * Parses docker build's `--ssh` values: `ID` (the agent at $SSH_AUTH_SOCK) or `ID=SOCKET`
 * (`default` is the id a Dockerfile's `--mount=type=ssh` uses when it names none).
 */
export function parseSshFlags(values: readonly string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Record<string, SshSource> {
  const agents: Record<string, SshSource> = {};
  for (const value of values) {
    const eq = value.indexOf("=");
    const id = eq < 0 ? value : value.slice(0, eq);
    if (id === "") throw new UsageError(`Cannot use --ssh "${value}": it needs an id (e.g. default)`);
    const path = eq < 0 ? env["SSH_AUTH_SOCK"] : value.slice(eq + 1);
    if (path === undefined || path === "") throw new UsageError(`Cannot use --ssh "${value}": SSH_AUTH_SOCK is not set; give the agent's socket as ${id}=PATH`);
    // A comma-separated list of keys is BuildKit's other form; kiln forwards agent sockets only.
    if (path.includes(",")) throw new UsageError(`Cannot use --ssh "${value}": kiln forwards one agent socket per id, not key files`);
    agents[id] = { socket: isAbsolute(path) ? path : resolve(cwd, path) };
  }
  return agents;
}
