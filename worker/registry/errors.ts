import { KilnError } from "../../solver/llb/index.js";

/** One entry of a registry's `{"errors": [...]}` body (Distribution spec, "Error codes"). */
export interface RegistryDiagnostic {
  readonly code: string;
  readonly message: string;
  readonly detail?: unknown;
}

/** Why a registry request failed, as a stable code. */
export type RegistryErrorCode =
  | "KILN_REGISTRY_UNAUTHORIZED"
  | "KILN_REGISTRY_NOT_FOUND"
  | "KILN_REGISTRY_REQUEST_FAILED"
  | "KILN_REGISTRY_UNREACHABLE"
  | "KILN_REGISTRY_BAD_RESPONSE";

export interface RegistryErrorOptions {
  readonly status?: number;
  readonly diagnostics?: readonly RegistryDiagnostic[];
  readonly retryable?: boolean;
  readonly url?: string;
  readonly cause?: unknown;
}

/**
 * A failed registry request. Keeps the registry's own diagnostics and the HTTP status (absent when
 * no response arrived). `retryable` says whether trying again may help: 5xx, 429, connection
 * resets and timeouts are; other 4xx and malformed responses are not. Retries read only this flag.
 */
export class RegistryError extends KilnError {
  readonly status: number | undefined;
  readonly diagnostics: readonly RegistryDiagnostic[];
  readonly retryable: boolean;
  readonly url: string | undefined;

  constructor(code: RegistryErrorCode, message: string, options: RegistryErrorOptions = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.diagnostics = options.diagnostics ?? [];
    this.retryable = options.retryable ?? false;
    this.url = options.url;
  }
}

/** Whether an error is a RegistryError whose failure may go away when the request is repeated. */
export function isRetryableRegistryError(error: unknown): boolean {
  return error instanceof RegistryError && error.retryable;
}

/** Whether an HTTP status means "try again later": 5xx and 429 Too Many Requests. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

/**
 * The error for a non-2xx response. `what` says what was asked for (`manifest "repo:tag"`); the
 * registry's diagnostics are parsed from the body when it is the spec's JSON and quoted in the message.
 * `verb` says what was being done (`fetch`, `push`), for the message.
 */
export async function errorFromResponse(response: Response, what: string, url: string, verb = "fetch"): Promise<RegistryError> {
  const diagnostics = await readDiagnostics(response);
  const status = response.status;
  const said = diagnostics.length === 0 ? "" : `: ${diagnostics.map((d) => `${d.code}: ${d.message}`).join("; ")}`;
  const options: RegistryErrorOptions = { status, diagnostics, retryable: isRetryableStatus(status), url };
  if (status === 401 || status === 403) {
    return new RegistryError("KILN_REGISTRY_UNAUTHORIZED", `Cannot ${verb} ${what}: the registry refused access (HTTP ${status})${said}`, options);
  }
  if (status === 404) {
    return new RegistryError("KILN_REGISTRY_NOT_FOUND", `Cannot ${verb} ${what}: the registry has no such content (HTTP 404)${said}`, options);
  }
  return new RegistryError("KILN_REGISTRY_REQUEST_FAILED", `Cannot ${verb} ${what}: the registry answered HTTP ${status}${said}`, options);
}

/**
 * The error for a request that got no response: connection refused or reset, DNS failure,
 * timeout. Resets and timeouts are retryable; a refused connection or an unknown host is too,
 * since registries restart and DNS flaps, but the retry budget keeps it bounded.
 */
export function errorFromNetwork(error: unknown, what: string, url: string, verb = "fetch"): RegistryError {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === undefined ? (cause instanceof Error ? cause.message : String(cause)) : `${code}${cause instanceof Error && cause.message !== "" ? ` (${cause.message})` : ""}`;
  return new RegistryError("KILN_REGISTRY_UNREACHABLE", `Cannot ${verb} ${what} ${verb === "fetch" ? "from" : "to"} "${url}": ${reason}`, { retryable: true, url, cause: error });
}

async function readDiagnostics(response: Response): Promise<readonly RegistryDiagnostic[]> {
  let text: string;
  try {
    text = await response.text();
  } catch {
    return [];
  }
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors.flatMap((e: unknown) => {
      if (typeof e !== "object" || e === null) return [];
      const { code, message, detail } = e as Record<string, unknown>;
      return [{ code: String(code ?? "UNKNOWN"), message: String(message ?? ""), ...(detail === undefined ? {} : { detail }) }];
    });
  } catch {
    return [];
  }
}
