import { resolve } from "node:path";
import { UsageError } from "./usage-error.js";

/** Where a build's result goes (`--output`/`-o`), resolved. */
export type OutputSpec =
  | { readonly type: "oci"; readonly dest: string; readonly tar: boolean; readonly names: readonly string[] }
  | { readonly type: "docker"; readonly dest: string; readonly names: readonly string[] }
  | { readonly type: "image"; readonly names: readonly string[]; readonly push: boolean };

/**
 * Parses one `--output` value as docker buildx and buildctl take it: `type=oci,dest=out.tar`,
 * `type=image,name=a,name=b`; a bare path is `type=local`, which kiln does not write yet.
 */
export function parseOutput(text: string): OutputSpec {
  if (!text.includes("=")) throw new UsageError(`Cannot use output "${text}": only "type=oci", "type=docker" and "type=image" outputs are supported so far`);
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
  switch (type) {
    case "oci":
    case "docker": {
      const dest = one("dest");
      if (dest === undefined || dest === "") throw new UsageError(`Cannot use output "${text}": type=${type} needs dest=FILE`);
      if (type === "docker") return { type, dest: resolve(dest), names };
      return { type, dest: resolve(dest), tar: parseBool(one("tar") ?? "true", text), names };
    }
    case "image":
      return { type, names, push: parseBool(one("push") ?? "false", text) };
    case undefined:
      throw new UsageError(`Cannot use output "${text}": it has no type=`);
    default:
      throw new UsageError(`Cannot use output "${text}": unknown type "${type}"; kiln writes "oci", "docker" and "image"`);
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
