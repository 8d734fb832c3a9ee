import { resolve } from "node:path";
import type { CacheExportSpec, CacheImportSpec, CacheMode } from "../../exporter/cache/index.js";
import { UsageError } from "./usage-error.js";

const EXPORT_FLAG = "--cache-to (--export-cache)";
const IMPORT_FLAG = "--cache-from (--import-cache)";

/**
 * Parses one `--cache-to` / `--export-cache` value, as buildx and buildctl take it:
 * `type=local,dest=DIR[,mode=min|max][,cache-mounts=true]`,
 * `type=registry,ref=REF[,mode=min|max][,cache-mounts=true]`, `type=inline`, or a bare `REF`
 * (type=registry). Relative `dest` paths are taken from `cwd`. Throws UsageError naming the flag.
 */
export function parseCacheExport(value: string, cwd: string = process.cwd()): CacheExportSpec {
  const fields = parseFields(value, EXPORT_FLAG);
  const type = fields.get("type") ?? "registry";
  switch (type) {
    case "local": {
      allowOnly(fields, ["type", "dest", "mode", "cache-mounts"], value, EXPORT_FLAG, type);
      return { kind: "local", dest: resolve(cwd, required(fields, "dest", value, EXPORT_FLAG)), mode: mode(fields, value), cacheMounts: flag(fields, "cache-mounts", value) };
    }
    case "registry":
      allowOnly(fields, ["type", "ref", "mode", "cache-mounts"], value, EXPORT_FLAG, type);
      return { kind: "registry", ref: required(fields, "ref", value, EXPORT_FLAG), mode: mode(fields, value), cacheMounts: flag(fields, "cache-mounts", value) };
    case "inline":
      allowOnly(fields, ["type", "mode"], value, EXPORT_FLAG, type);
      if (mode(fields, value) !== "min") throw new UsageError(`Cannot use ${EXPORT_FLAG} "${value}": an inline cache holds only the image's own layers, so its mode is min`);
      return { kind: "inline" };
    default:
      throw new UsageError(`Cannot use ${EXPORT_FLAG} "${value}": unknown cache type "${type}"; choose local, registry or inline`);
  }
}

/**
 * Parses one `--cache-from` / `--import-cache` value: `type=local,src=DIR`,
 * `type=registry,ref=REF` (a cache artifact, or an image with an inline cache), or a bare `REF`.
 */
export function parseCacheImport(value: string, cwd: string = process.cwd()): CacheImportSpec {
  const fields = parseFields(value, IMPORT_FLAG);
  const type = fields.get("type") ?? "registry";
  switch (type) {
    case "local":
      allowOnly(fields, ["type", "src"], value, IMPORT_FLAG, type);
      return { kind: "local", src: resolve(cwd, required(fields, "src", value, IMPORT_FLAG)) };
    case "registry":
      allowOnly(fields, ["type", "ref"], value, IMPORT_FLAG, type);
      return { kind: "registry", ref: required(fields, "ref", value, IMPORT_FLAG) };
    case "inline":
      throw new UsageError(`Cannot use ${IMPORT_FLAG} "${value}": an inline cache is imported from its image with type=registry,ref=IMAGE`);
    default:
      throw new UsageError(`Cannot use ${IMPORT_FLAG} "${value}": unknown cache type "${type}"; choose local or registry`);
  }
}

/** `k=v,k=v` into a map; a value without `=` anywhere is a bare registry reference. */
function parseFields(value: string, flagName: string): Map<string, string> {
  const text = value.trim();
  if (text === "") throw new UsageError(`Cannot use ${flagName} "": expected type=local,… or type=registry,… or a registry reference`);
  if (!text.includes("=")) return new Map([["type", "registry"], ["ref", text]]);
  const fields = new Map<string, string>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot use ${flagName} "${value}": "${part}" is not KEY=VALUE`);
    const key = part.slice(0, eq).trim();
    if (fields.has(key)) throw new UsageError(`Cannot use ${flagName} "${value}": "${key}" is given twice`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  return fields;
}

function allowOnly(fields: ReadonlyMap<string, string>, allowed: readonly string[], value: string, flagName: string, type: string): void {
  for (const key of fields.keys()) {
    if (!allowed.includes(key)) throw new UsageError(`Cannot use ${flagName} "${value}": type=${type} has no option "${key}" (it takes ${allowed.filter((k) => k !== "type").join(", ") || "none"})`);
  }
}

function required(fields: ReadonlyMap<string, string>, key: string, value: string, flagName: string): string {
  const found = fields.get(key);
  if (found === undefined || found === "") throw new UsageError(`Cannot use ${flagName} "${value}": type=${fields.get("type") ?? "registry"} needs ${key}=…`);
  return found;
}

function mode(fields: ReadonlyMap<string, string>, value: string): CacheMode {
  const found = fields.get("mode") ?? "min";
  if (found !== "min" && found !== "max") throw new UsageError(`Cannot use ${EXPORT_FLAG} "${value}": mode is min or max, not "${found}"`);
  return found;
}

function flag(fields: ReadonlyMap<string, string>, key: string, value: string): boolean {
  const found = fields.get(key) ?? "false";
  if (found !== "true" && found !== "false") throw new UsageError(`Cannot use ${EXPORT_FLAG} "${value}": ${key} is true or false, not "${found}"`);
  return found === "true";
}
