import { isDigest, KilnError, type Digest } from "../../solver/llb/index.js";

/** A parsed image reference, normalised the way Docker does (`busybox` → `docker.io/library/busybox:latest`). */
export interface Reference {
  /** Registry host with optional port, e.g. `docker.io` or `127.0.0.1:5000`. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export class ReferenceError extends KilnError {
  readonly reference: string;
  constructor(reference: string, reason: string) {
    super("KILN_INVALID_REFERENCE", `Cannot parse image reference "${reference}": ${reason}`);
    this.reference = reference;
  }
}

const DEFAULT_DOMAIN = "docker.io";
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Parses `[domain/]path[:tag][@digest]`. The first component is a domain when it contains a dot
 * or a colon or is `localhost`; Docker Hub names get `library/`; a reference with neither tag nor
 * digest gets `latest`.
 */
export function parseReference(text: string): Reference {
  let rest = text.trim();
  if (rest === "") throw new ReferenceError(text, "it is empty");
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw new ReferenceError(text, `"${d}" is not a sha256 digest`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(text, `"${tag}" is not a valid tag`);
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === "index.docker.io") domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = `library/${path}`;
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ReferenceError(text, `repository name "${path}" must be lower case letters, digits and separators`);
    }
  }
  if (tag === undefined && digest === undefined) tag = "latest";
  return { domain, path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** `domain/path[:tag][@digest]`, the full normalised form. */
export function formatReference(ref: Reference): string {
  return `${ref.domain}/${ref.path}${ref.tag === undefined ? "" : `:${ref.tag}`}${ref.digest === undefined ? "" : `@${ref.digest}`}`;
}

/** The short form Docker shows: `busybox:latest` for Docker Hub's library images. */
export function familiarReference(ref: Reference): string {
  let name = `${ref.domain}/${ref.path}`;
  if (ref.domain === DEFAULT_DOMAIN) name = ref.path.startsWith("library/") ? ref.path.slice("library/".length) : ref.path;
  return `${name}${ref.tag === undefined ? "" : `:${ref.tag}`}${ref.digest === undefined ? "" : `@${ref.digest}`}`;
}

/** The same reference pinned to `digest` (the tag is kept for readability, as BuildKit does). */
export function withDigest(ref: Reference, digest: Digest): Reference {
  return { ...ref, digest };
}

/** Whether the registry is on a loopback address, where kiln allows plain HTTP. */
export function isLoopbackDomain(domain: string): boolean {
  const host = domain.startsWith("[") ? domain.slice(1, domain.indexOf("]")) : domain.replace(/:\d+$/, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
