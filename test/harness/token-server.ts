import { execFile } from "node:child_process";
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface TokenServerOptions {
  /** The only account; requests without it get tokens for pull only, or none when `anonymous` is false. */
  readonly user: string;
  readonly password: string;
  /** Whether anonymous clients get pull tokens (Docker Hub does). Default false. */
  readonly anonymous?: boolean;
}

/** A running token server: pass `registryAuth` to startRegistry({ tokenAuth }). */
export interface TokenServer {
  readonly realm: string;
  readonly registryAuth: { readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCertBundle: string };
  /** Every token request received: the scopes asked for and the user that authenticated (null: anonymous). */
  readonly requests: { readonly scopes: readonly string[]; readonly user: string | null }[];
  stop(): Promise<void>;
}

const SERVICE = "kiln-test-registry";
const ISSUER = "kiln-test-token-server";

/**
 * A Distribution token server (docs: "Token Authentication Specification") on a free loopback
 * port: `GET /token?service=…&scope=…` with optional Basic credentials answers
 * `{"token": JWT}`, where the JWT is ES256-signed by a key whose self-signed certificate (made
 * with openssl) is the registry's `rootcertbundle`, and carries the certificate in `x5c` so the
 * registry can check it. Grants: pull and push to the configured user, pull to anonymous clients
 * when allowed, 401 for wrong credentials.
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-token-server-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  await execFileAsync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=kiln-test-token-server",
  ]);
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw.toString("base64");
  const requests: { scopes: readonly string[]; user: string | null }[] = [];

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://token");
    const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter((s) => s !== "");
    const user = authenticate(request.headers.authorization, options);
    requests.push({ scopes, user: user === false ? null : user });
    if (url.pathname !== "/token" || url.searchParams.get("service") !== SERVICE) return answer(response, 400, { errors: [{ code: "BAD_REQUEST", message: "unknown service" }] });
    if (user === false || (user === null && options.anonymous !== true)) return answer(response, 401, { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] });
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(":");
      if (type !== "repository" || name === undefined || actions === undefined) return [];
      const granted = actions.split(",").filter((a) => a === "pull" || (a === "push" && user !== null));
      return granted.length === 0 ? [] : [{ type, name, actions: granted }];
    });
    answer(response, 200, { token: jwt(key, certDer, { sub: user ?? "", access }), expires_in: 300 });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const realm = `http://127.0.0.1:${port}/token`;
  return {
    realm,
    registryAuth: { realm, service: SERVICE, issuer: ISSUER, rootCertBundle: certFile },
    requests,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The user of valid Basic credentials, null for none, false for wrong ones. */
function authenticate(header: string | undefined, options: TokenServerOptions): string | null | false {
  if (header === undefined) return null;
  if (!header.startsWith("Basic ")) return false;
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
  return decoded === `${options.user}:${options.password}` ? options.user : false;
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

function jwt(key: KeyObject, certDer: string, claims: { sub: string; access: unknown[] }): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const header = encode({ typ: "JWT", alg: "ES256", x5c: [certDer] });
  const payload = encode({ iss: ISSUER, aud: SERVICE, iat: now - 5, nbf: now - 5, exp: now + 300, jti: randomBytes(8).toString("hex"), ...claims });
  // JWS wants the raw r||s form of an ECDSA signature, not DER.
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
  return `${header}.${payload}.${signature}`;
}
