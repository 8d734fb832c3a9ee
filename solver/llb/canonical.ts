/**
 * Canonical JSON: object keys sorted by code unit, `undefined` members dropped, no whitespace.
 * Two values that mean the same serialize to the same bytes, which is what makes op digests stable.
 * Maps and Sets are not accepted: ops are plain data.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : sortKeys(item)));
  if (value !== null && typeof value === "object") {
    if (value instanceof Map || value instanceof Set) throw new TypeError("canonicalJson() takes plain data, not a Map or Set");
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) out[key] = sortKeys(member);
    }
    return out;
  }
  return value;
}
