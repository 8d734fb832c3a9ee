import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The registry binary Debian's `docker-registry` package installs (distribution v2). */
const REGISTRY_BINARY = "/usr/bin/docker-registry";

/**
 * How the registry authenticates clients. `token` needs a token server that signs JWTs with a key
 * whose certificate is in `rootCertBundle` (see test/harness/token-server.ts).
 */
export interface RegistryOptions {
  readonly htpasswd?: { readonly user: string; readonly password: string };
  readonly tokenAuth?: {
    readonly realm: string;
    readonly service: string;
    readonly issuer: string;
    /** A PEM file with the certificate of the key that signs tokens. */
    readonly rootCertBundle: string;
  };
}

/** A running registry. `host` is `127.0.0.1:PORT`; `stop()` ends the process and deletes its storage. */
export interface RunningRegistry {
  readonly host: string;
  /** The registry's filesystem storage (`docker/registry/v2/…`), for tests that corrupt it on purpose. */
  readonly storage: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's docker-registry on a free loopback port with filesystem storage in a temp
 * directory, and resolves once `GET /v2/` answers (200, or 401 when auth is configured). Callers
 * own the returned registry and must `stop()` it (it is killed by its PID, never by name).
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-registry-"));
  try {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const configPath = join(dir, "config.yml");
      await writeFile(configPath, await registryConfig(dir, port, options));
      const child = spawn(REGISTRY_BINARY, ["serve", configPath], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
        stderr = (stderr + chunk).slice(-4000);
      });
      const host = `127.0.0.1:${port}`;
      const ready = await waitUntilServing(child, host);
      if (ready) {
        // A test that forgets stop() must not leave a registry running after the test process ends.
        const killOnExit = (): void => {
          if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL");
        };
        process.once("exit", killOnExit);
        return {
          host,
          storage: join(dir, "storage"),
          stop: async () => {
            process.removeListener("exit", killOnExit);
            await stopProcess(child);
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await stopProcess(child);
      // Another process may have taken the port between freePort() and the registry's bind.
      if (attempt >= 2) throw new Error(`Cannot start docker-registry on ${host}: ${stderr.trim() || "it never answered GET /v2/"}`);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Pushes the image named `ref` in the OCI layout at `layoutDir` (its `org.opencontainers.image.ref.name`,
 * e.g. `busybox:latest`) to `host/ref` (or `host/target` when given) with skopeo, over plain HTTP,
 * keeping digests unless converting to Docker media types. An index is pushed as an index with all its manifests.
 */
export async function pushOciLayout(
  layoutDir: string,
  ref: string,
  host: string,
  options: {
    readonly target?: string;
    readonly credentials?: { readonly user: string; readonly password: string };
    /** `v2s2` converts to Docker schema 2 media types (and so changes the digests). */
    readonly format?: "oci" | "v2s2";
  } = {},
): Promise<void> {
  const credentials = options.credentials;
  await execFileAsync("skopeo", [
    "copy",
    "--quiet",
    "--all",
    ...(options.format === "v2s2" ? ["--format", "v2s2"] : ["--preserve-digests"]),
    "--dest-tls-verify=false",
    ...(credentials === undefined ? [] : ["--dest-creds", `${credentials.user}:${credentials.password}`]),
    `oci:${layoutDir}:${ref}`,
    `docker://${host}/${options.target ?? ref}`,
  ]);
}

async function registryConfig(dir: string, port: number, options: RegistryOptions): Promise<string> {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(join(dir, "storage"))}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
  ];
  if (options.htpasswd !== undefined && options.tokenAuth !== undefined) {
    throw new Error("Cannot configure the test registry with both htpasswd and token auth: the registry takes one");
  }
  if (options.htpasswd !== undefined) {
    const file = join(dir, "htpasswd");
    await writeFile(file, `${options.htpasswd.user}:${await bcryptHash(options.htpasswd.password)}\n`);
    lines.push("auth:", "  htpasswd:", "    realm: kiln-test", `    path: ${JSON.stringify(file)}`);
  }
  if (options.tokenAuth !== undefined) {
    const t = options.tokenAuth;
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${JSON.stringify(t.realm)}`,
      `    service: ${JSON.stringify(t.service)}`,
      `    issuer: ${JSON.stringify(t.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(t.rootCertBundle)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * A bcrypt hash, the only kind the registry's htpasswd accepts. Debian's libcrypt (libxcrypt)
 * implements bcrypt, and perl's `crypt` calls it, so no extra package or npm module is needed.
 */
export async function bcryptHash(password: string): Promise<string> {
  const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // 22 salt characters; the last one carries only 2 bits, so it must be one of ".Oeu".
  const salt = [...randomBytes(21)].map((b) => alphabet[b % 64]).join("") + ".Oeu"[randomBytes(1)[0]! % 4];
  const { stdout } = await execFileAsync("perl", ["-e", 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]);
  if (!stdout.startsWith("$2b$")) throw new Error(`Cannot make a bcrypt hash with perl's crypt: got "${stdout}"`);
  return stdout;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `GET /v2/` until it answers; false when the process exits first or 30 s pass. */
async function waitUntilServing(child: ChildProcess, host: string): Promise<boolean> {
  let exited = child.exitCode !== null;
  child.once("exit", () => {
    exited = true;
  });
  for (let i = 0; i < 300 && !exited; i++) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) return true;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  return false;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
  }, 5000);
  await exited;
  clearTimeout(timer);
}
