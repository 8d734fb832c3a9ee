import { resolve } from "node:path";
import { UsageError } from "./usage-error.js";

/** Where a build's result goes (`--output`/`-o`), resolved. */
export type OutputSpec =
  | { readonly type: "oci"; readonly dest: string; readonly tar: boolean; readonly names: readonly string[] }
  | { readonly type: "docker"; readonly dest: string; readonly names: readonly string[] }
  | { readonly type: "image"; readonly names: readonly string[]; readonly push: boolean; readonly pushByDigest: boolean }
  /** The final filesystem into a directory. */
  | { readonly type: "local"; readonly dest: string }
  /** The final filesystem as one tar; `dest` "-" is standard output. */
  | { readonly type: "tar"; readonly dest: string };

/**
 * Parses one `--output` value as docker buildx and buildctl take it: `type=oci,dest=out.tar`,
 * `type=image,name=a,name=b,push=true`, `type=registry,name=…` (an image that is pushed),
 * `type=local,dest=DIR`, `type=tar,dest=FILE`. As in buildx, a bare value without `=` is a
 * destination: `-` means a tar of the filesystem on standard output, anything else a local directory.
 */
export function parseOutput(text: string): OutputSpec {
  if (!text.includes("=")) {
    if (text === "") throw new UsageError("Cannot use an empty output");
    return text === "-" ? { type: "tar", dest: "-" } : { type: "local", dest: resolve(text) };
  }
  const fields = new Map<string, string[]>();
  for (const part of splitCsv(text)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot parse output "${text}": "${part}" is not key=value`);
    const key = part.slice(0, eq).trim().toLowerCase();
    fields.set(key, [...(fields.get(key) ?? []), part.slice(eq + 1)]);
  }
  const one = (key: string): string | undefined => fields.get(key)?.at(-1);
  const names = (fields.get("name") ?? []).flatMap((n) => n.split(",")).filter((n) => n !== "");
  const type = one("type");
  const dest = (): string => {
    const value = one("dest");
    if (value === undefined || value === "") throw new UsageError(`Cannot use output "${text}": type=${type} needs dest=${type === "local" ? "DIR" : "FILE"}`);
    return value;
  };
  switch (type) {
    case "oci":
      return { type, dest: resolve(dest()), tar: parseBool(one("tar") ?? "true", text), names };
    case "docker":
      return { type, dest: resolve(dest()), names };
    case "image":
    case "registry": {
      const push = type === "registry" || parseBool(one("push") ?? "false", text);
      const pushByDigest = parseBool(one("push-by-digest") ?? "false", text);
      if (push && names.length === 0) throw new UsageError(`Cannot use output "${text}": pushing needs name=REGISTRY/REPOSITORY[:TAG]`);
      return { type: "image", names, push, pushByDigest };
    }
    case "local":
      return { type, dest: resolve(dest()) };
    case "tar": {
      const value = dest();
      return { type, dest: value === "-" ? "-" : resolve(value) };
    }
    case undefined:
      throw new UsageError(`Cannot use output "${text}": it has no type=`);
    default:
      throw new UsageError(`Cannot use output "${text}": unknown type "${type}"; kiln writes "oci", "docker", "image", "registry", "local" and "tar"`);
  }
}

function parseBool(value: string, text: string): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new UsageError(`Cannot parse output "${text}": "${value}" is not true or false`);
}

/** Splits on commas outside double quotes, as BuildKit's csvvalue does. */
function splitCsv(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === "," && !quoted) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.filter((p) => p !== "");
}
