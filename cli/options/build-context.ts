import { isAbsolute, resolve } from "node:path";
import { UsageError } from "./usage-error.js";

/**
 * A named build context (`--build-context NAME=VALUE`, docker build's flag): a local directory,
 * an image (`docker-image://REF`), or an image in an OCI layout (`oci-layout://PATH[@DIGEST]`).
 */
export type BuildContextSpec =
  | { readonly kind: "local"; readonly dir: string }
  | { readonly kind: "image"; readonly ref: string }
  | { readonly kind: "oci-layout"; readonly path: string; readonly digest?: string };

/** Names a local named context may not take: they are the local sources of the main context and Dockerfile. */
const RESERVED = new Set(["context", "dockerfile"]);

/** Parses one `NAME=VALUE`; relative directories are taken from `cwd`. Throws UsageError naming what is wrong. */
export function parseBuildContext(text: string, cwd: string): [string, BuildContextSpec] {
  const eq = text.indexOf("=");
  const name = eq < 0 ? "" : text.slice(0, eq).trim();
  const value = eq < 0 ? "" : text.slice(eq + 1).trim();
  if (name === "" || value === "") throw new UsageError(`Cannot use --build-context "${text}": expected NAME=DIR, NAME=docker-image://REF or NAME=oci-layout://PATH[@DIGEST]`);
  if (value.startsWith("docker-image://")) {
    const ref = value.slice("docker-image://".length);
    if (ref === "") throw new UsageError(`Cannot use --build-context "${text}": docker-image:// needs an image reference`);
    return [name, { kind: "image", ref }];
  }
  if (value.startsWith("oci-layout://")) {
    const rest = value.slice("oci-layout://".length);
    const at = rest.lastIndexOf("@");
    const path = at < 0 ? rest : rest.slice(0, at);
    const digest = at < 0 ? undefined : rest.slice(at + 1);
    if (path === "") throw new UsageError(`Cannot use --build-context "${text}": oci-layout:// needs a layout directory`);
    if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/u.test(digest)) throw new UsageError(`Cannot use --build-context "${text}": "${digest}" is not a sha256 digest`);
    return [name, { kind: "oci-layout", path: resolve(cwd, path), ...(digest === undefined ? {} : { digest }) }];
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//u.test(value)) {
    throw new UsageError(`Cannot use --build-context "${text}": kiln reads directories, docker-image:// and oci-layout:// contexts, not "${value.slice(0, value.indexOf("://") + 3)}"`);
  }
  if (RESERVED.has(name.toLowerCase())) throw new UsageError(`Cannot use --build-context "${text}": "${name}" is the name of the main build context`);
  return [name, { kind: "local", dir: isAbsolute(value) ? value : resolve(cwd, value) }];
}

/** Parses every `--build-context`; a later NAME wins. */
export function parseBuildContexts(values: readonly string[], cwd: string): Record<string, BuildContextSpec> {
  const out: Record<string, BuildContextSpec> = {};
  for (const text of values) {
    const [name, spec] = parseBuildContext(text, cwd);
    out[name] = spec;
  }
  return out;
}
