import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** A user name and password (or token used as password) for one registry. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Finds the credentials for a registry host (`docker.io`, `127.0.0.1:5000`), or undefined for
 * anonymous access. Called lazily, only when a registry asks for authentication.
 */
export type CredentialLookup = (host: string) => Promise<Credentials | undefined>;

export interface DockerConfigOptions {
  /** The directory holding config.json; default `$DOCKER_CONFIG`, else `$HOME/.docker`. */
  readonly configDir?: string;
}

interface DockerConfigFile {
  readonly auths?: Readonly<Record<string, { readonly auth?: string; readonly username?: string; readonly password?: string }>>;
}

/**
 * Credentials from Docker's `config.json` `auths` section: each entry has either `auth` (base64 of
 * `user:password`) or `username` and `password`. Keys may be a bare host, a URL with scheme and
 * path, or Docker Hub's legacy `https://index.docker.io/v1/`; all are matched by host. The file is
 * read on each lookup so `docker login` during a long session is seen. A missing file means
 * anonymous; a malformed one is an error naming the file. Credential helpers (`credsStore`,
 * `credHelpers`) are not supported.
 */
export function dockerConfigCredentials(options: DockerConfigOptions = {}): CredentialLookup {
  return async (host) => {
    const dir = options.configDir ?? process.env["DOCKER_CONFIG"] ?? join(process.env["HOME"] ?? homedir(), ".docker");
    const file = join(dir, "config.json");
    let config: DockerConfigFile;
    try {
      config = JSON.parse(await readFile(file, "utf8")) as DockerConfigFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new Error(`Cannot read registry credentials from "${file}": ${(error as Error).message}`, { cause: error });
    }
    const wanted = normalizeRegistryHost(host);
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      if (normalizeRegistryHost(key) !== wanted) continue;
      if (entry.username !== undefined && entry.password !== undefined && entry.username !== "") {
        return { username: entry.username, password: entry.password };
      }
      if (entry.auth !== undefined && entry.auth !== "") {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon <= 0) throw new Error(`Cannot use the credentials for "${key}" in "${file}": "auth" is not base64 of "user:password"`);
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
    }
    return undefined;
  };
}

/** Fixed credentials by host, e.g. from command-line flags; hosts are matched as in config.json. */
export function staticCredentials(byHost: Readonly<Record<string, Credentials>>): CredentialLookup {
  const table = new Map(Object.entries(byHost).map(([host, credentials]) => [normalizeRegistryHost(host), credentials]));
  return async (host) => table.get(normalizeRegistryHost(host));
}

/** Tries each lookup in order; the first that has credentials wins. */
export function chainCredentials(...lookups: readonly CredentialLookup[]): CredentialLookup {
  return async (host) => {
    for (const lookup of lookups) {
      const found = await lookup(host);
      if (found !== undefined) return found;
    }
    return undefined;
  };
}

/** `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/x` → `h:5000`; lower case. */
export function normalizeRegistryHost(key: string): string {
  let host = key.trim().toLowerCase().replace(/^[a-z]+:\/\//, "");
  const slash = host.indexOf("/");
  if (slash >= 0) host = host.slice(0, slash);
  if (host === "index.docker.io" || host === "registry-1.docker.io" || host === "registry.hub.docker.com") return "docker.io";
  return host;
}
