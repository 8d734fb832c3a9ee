import type { CacheUsage } from "../../solver/index.js";
import { UsageError } from "./usage-error.js";

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** `--keep-storage 5GB`: bytes, with binary units as docker's (k, m, g, t; optional b / ib; case-insensitive). */
export function parseSize(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase()];
  if (match === null || unit === undefined) throw new UsageError(`Cannot use ${flag} "${text}": expected a size such as 512MB or 5GB`);
  return Math.floor(Number(match[1]) * unit);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--keep-duration 24h`: milliseconds, Go-style (`1h30m`, `90s`, `500ms`) plus `d` for days. */
export function parseDuration(text: string, flag: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text.trim()) {
    throw new UsageError(`Cannot use ${flag} "${text}": expected a duration such as 30m, 24h or 7d`);
  }
  return parts.reduce((total, p) => total + Number(p[1]) * (DURATION_UNITS[p[2] as string] ?? 0), 0);
}

/**
 * `--filter K=V` of `kiln prune` and `kiln du`, as buildx prune's: `type=exec` (a record's type:
 * exec, file, source.docker-image, source.local…), `id=PREFIX` (cache key, with or without
 * `sha256:`), `description=TEXT` (in the step's name), `shared=true|false`, `until=24h` (unused
 * for longer than that). Several filters must all match.
 */
export function parseCacheFilters(filters: readonly string[], now: number = Date.now()): (usage: CacheUsage) => boolean {
  const tests = filters.map((filter): ((u: CacheUsage) => boolean) => {
    const eq = filter.indexOf("=");
    const key = eq < 0 ? filter : filter.slice(0, eq);
    const value = eq < 0 ? "" : filter.slice(eq + 1);
    switch (key) {
      case "type":
        return (u) => u.record.type === value;
      case "id": {
        const prefix = value.startsWith("sha256:") ? value : `sha256:${value}`;
        return (u) => u.key.startsWith(prefix);
      }
      case "description":
        return (u) => (u.record.vertexName ?? "").includes(value);
      case "shared":
        if (value !== "true" && value !== "false") throw new UsageError(`Cannot use filter "${filter}": shared is true or false`);
        return (u) => u.shared === (value === "true");
      case "until": {
        const age = parseDuration(value, "--filter until");
        return (u) => now - u.record.lastUsed > age;
      }
      default:
        throw new UsageError(`Cannot use filter "${filter}": filter by type, id, description, shared or until`);
    }
  });
  return (usage) => tests.every((test) => test(usage));
}

/** Bytes for people: `1.5MB`, as docker prints sizes (binary multiples). */
export function formatSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes}B` : `${value.toFixed(value < 10 ? 2 : 1)}${units[unit]}`;
}

/** How long ago `time` was, coarsely: `12 seconds ago`, `3 hours ago`. */
export function formatAgo(time: number, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - time) / 1000));
  const [amount, unit] =
    seconds < 60 ? [seconds, "second"] : seconds < 3600 ? [Math.floor(seconds / 60), "minute"] : seconds < 86400 ? [Math.floor(seconds / 3600), "hour"] : [Math.floor(seconds / 86400), "day"];
  return `${amount} ${unit}${amount === 1 ? "" : "s"} ago`;
}
