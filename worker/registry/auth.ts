import type { CredentialLookup, Credentials } from "./credentials.js";
import { errorFromNetwork, errorFromResponse, RegistryError } from "./errors.js";
import { withRetries, type RetryPolicy } from "./retry.js";

/** A parsed `WWW-Authenticate` challenge (RFC 7235), scheme lower-cased, parameter names lower-cased. */
export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** What the registry of one host asked for the last time it answered 401. */
type HostScheme =
  | { readonly kind: "basic" }
  | { readonly kind: "bearer"; readonly realm: string; readonly service: string | undefined };

interface CachedToken {
  readonly token: string;
  /** Milliseconds since the epoch. */
  readonly expires: number;
}

export interface RegistryAuthOptions {
  readonly credentials: CredentialLookup;
  readonly retry?: RetryPolicy;
  /** Whether plain HTTP may carry credentials to `host` (loopback and insecure registries). */
  readonly allowsHttp: (host: string) => boolean;
  readonly userAgent: string;
}

/**
 * Authentication for registry requests: anonymous until a registry answers 401, then what its
 * `WWW-Authenticate` asks for. `Basic` sends the host's credentials with every later request.
 * `Bearer` fetches a token from the challenge's realm (`GET realm?service=…&scope=…`, with Basic
 * credentials when there are any, anonymously otherwise) and caches it per host and scope until it
 * expires. Credentials are looked up only when a challenge needs them, and are never sent over
 * plain HTTP except to hosts `allowsHttp` admits.
 */
export class RegistryAuth {
  readonly #options: RegistryAuthOptions;
  readonly #schemes = new Map<string, HostScheme>();
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pending = new Map<string, Promise<CachedToken>>();

  constructor(options: RegistryAuthOptions) {
    this.#options = options;
  }

  /** The `Authorization` header for a request to `host` needing `scope`, if one is known yet. */
  async authorization(host: string, scope: string): Promise<string | undefined> {
    const scheme = this.#schemes.get(host);
    if (scheme === undefined) return undefined;
    switch (scheme.kind) {
      case "basic": {
        const credentials = await this.#options.credentials(host);
        return credentials === undefined ? undefined : basicHeader(credentials);
      }
      case "bearer": {
        const cached = this.#tokens.get(tokenKey(host, scope));
        return cached !== undefined && cached.expires > Date.now() ? `Bearer ${cached.token}` : undefined;
      }
    }
  }

  /**
   * Learns from a 401's `WWW-Authenticate` header and gets what it asks for (a token, or the
   * credentials for Basic). Returns whether repeating the request can now succeed; false means
   * there is nothing more to send (no credentials for a Basic registry, an unknown scheme).
   * Throws a RegistryError when the token server refuses or fails.
   */
  async respondToChallenge(
    host: string,
    scope: string,
    header: string | null,
    options: { readonly sent?: string | undefined; readonly signal?: AbortSignal } = {},
  ): Promise<boolean> {
    const signal = options.signal;
    // A request sent before a parallel one fetched a token meets the same challenge: the token
    // that request got answers it, without asking the token server again.
    const current = await this.authorization(host, scope);
    if (current !== undefined && current !== options.sent) return true;
    const challenges = parseAuthenticate(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer !== undefined && bearer.params["realm"] !== undefined) {
      const scheme: HostScheme = { kind: "bearer", realm: bearer.params["realm"], service: bearer.params["service"] };
      this.#schemes.set(host, scheme);
      // The registry names the scope it wants (it may be wider than ours, e.g. pull,push); ask for both.
      // `scope` may hold several, space-separated (a cross-repository mount needs push here and pull there).
      const scopes = [...new Set([...scope.split(" "), ...(bearer.params["scope"]?.split(" ") ?? [])])].filter((s) => s !== "");
      // Requests that run in parallel (layer downloads) and meet the same challenge share one token request.
      const key = tokenKey(host, scope);
      let pending = this.#pending.get(key);
      if (pending === undefined) {
        pending = this.#fetchToken(host, scheme, scopes, signal).finally(() => this.#pending.delete(key));
        this.#pending.set(key, pending);
      }
      this.#tokens.set(key, await pending);
      return true;
    }
    if (basic !== undefined) {
      this.#schemes.set(host, { kind: "basic" });
      return (await this.#options.credentials(host)) !== undefined;
    }
    return false;
  }

  /** Whether credentials exist for `host` (for error messages that say what to do). */
  async hasCredentials(host: string): Promise<boolean> {
    return (await this.#options.credentials(host)) !== undefined;
  }

  async #fetchToken(host: string, scheme: Extract<HostScheme, { kind: "bearer" }>, scopes: readonly string[], signal?: AbortSignal): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(scheme.realm);
    } catch (error) {
      throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot authenticate to "${host}": the token realm "${scheme.realm}" is not a URL`, { cause: error });
    }
    if (scheme.service !== undefined) url.searchParams.set("service", scheme.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const credentials = await this.#options.credentials(host);
    const headers: Record<string, string> = { "user-agent": this.#options.userAgent };
    if (credentials !== undefined) {
      if (url.protocol !== "https:" && !this.#options.allowsHttp(url.host)) {
        throw new RegistryError(
          "KILN_REGISTRY_UNAUTHORIZED",
          `Cannot authenticate to "${host}": its token realm "${scheme.realm}" is plain HTTP, and kiln sends credentials over HTTP only to loopback or insecure registries`,
        );
      }
      headers["authorization"] = basicHeader(credentials);
    }
    const what = `a token for "${host}" (scope "${scopes.join(" ")}")`;
    const started = Date.now();
    const body = await withRetries(
      async () => {
        let response: Response;
        try {
          response = await fetch(url, { headers, ...(signal === undefined ? {} : { signal }) });
        } catch (error) {
          if (signal?.aborted === true) throw signal.reason;
          throw errorFromNetwork(error, what, url.toString());
        }
        if (!response.ok) {
          const error = await errorFromResponse(response, what, url.toString());
          if (error.status !== 401 && error.status !== 403) throw error;
          const refused = credentials === undefined ? "anonymous access; add credentials for it to ~/.docker/config.json (\"auths\")" : `the credentials of user "${credentials.username}"`;
          throw new RegistryError("KILN_REGISTRY_UNAUTHORIZED", `Cannot get ${what} from "${scheme.realm}": the token server refused ${refused} (HTTP ${error.status})`, {
            status: error.status,
            diagnostics: error.diagnostics,
            url: url.toString(),
          });
        }
        try {
          return (await response.json()) as Record<string, unknown>;
        } catch (error) {
          throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot read ${what}: the token server's answer is not JSON`, { url: url.toString(), cause: error });
        }
      },
      { ...(this.#options.retry === undefined ? {} : { policy: this.#options.retry }), ...(signal === undefined ? {} : { signal }) },
    );
    const token = typeof body["token"] === "string" ? body["token"] : typeof body["access_token"] === "string" ? body["access_token"] : undefined;
    if (token === undefined || token === "") {
      throw new RegistryError("KILN_REGISTRY_BAD_RESPONSE", `Cannot read ${what}: the answer has neither "token" nor "access_token"`, { url: url.toString() });
    }
    // The spec's default lifetime is 60 s; renew a little early so a token never expires in flight.
    const seconds = typeof body["expires_in"] === "number" && body["expires_in"] > 0 ? body["expires_in"] : 60;
    return { token, expires: started + Math.max(1, seconds - 5) * 1000 };
  }
}

/** The `repository:PATH:pull` scope of a repository (Distribution token spec). */
export function pullScope(path: string): string {
  return `repository:${path}:pull`;
}

/** The `repository:PATH:pull,push` scope a push to a repository needs (Distribution token spec). */
export function pushScope(path: string): string {
  return `repository:${path}:pull,push`;
}

function tokenKey(host: string, scope: string): string {
  return `${host} ${scope}`;
}

function basicHeader(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, "utf8").toString("base64")}`;
}

/**
 * Parses a `WWW-Authenticate` value into challenges: `Bearer realm="…",service="…",scope="…"`,
 * `Basic realm="…"`, several separated by commas; quoted strings may contain commas and `\"`.
 */
export function parseAuthenticate(header: string): readonly AuthChallenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < header.length && /[\s,]/.test(header[i]!)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < header.length && /[^\s,="]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < header.length) {
    skipSpace();
    const word = readToken();
    if (word === "") break;
    // A word followed by "=" is a parameter of the current challenge; otherwise a new scheme.
    let j = i;
    while (j < header.length && header[j] === " ") j++;
    if (header[j] === "=" && challenges.length > 0) {
      i = j + 1;
      while (i < header.length && header[i] === " ") i++;
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        value = readToken();
      }
      challenges[challenges.length - 1]!.params[word.toLowerCase()] = value;
    } else {
      challenges.push({ scheme: word.toLowerCase(), params: {} });
    }
  }
  return challenges;
}
