/**
 * Levenshtein distance between two strings, by UTF-16 code unit (insert, delete and substitute
 * each cost 1), as the agext/levenshtein package BuildKit's suggestions use with default costs.
 */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/**
 * BuildKit's suggest.Search: the option closest to `value` within edit distance 2 (the first one
 * at the smallest distance), or undefined. An exact match means the value was not mistyped, so
 * there is nothing to suggest. Without `caseSensitive` the comparison ignores case and the
 * suggestion takes the case of `value` when `value` is all lower or all upper case.
 */
export function suggestName(value: string, options: Iterable<string>, caseSensitive: boolean): string | undefined {
  const wanted = caseSensitive ? value : value.toLowerCase();
  let match: string | undefined;
  let best = 3;
  for (const option of options) {
    const candidate = caseSensitive ? option : option.toLowerCase();
    if (candidate === wanted) return undefined;
    const distance = editDistance(wanted, candidate);
    if (distance < best) {
      best = distance;
      match = caseSensitive ? candidate : matchCase(candidate, value);
    }
  }
  return match;
}

function matchCase(candidate: string, original: string): string {
  if (original === original.toLowerCase()) return candidate.toLowerCase();
  if (original === original.toUpperCase()) return candidate.toUpperCase();
  return candidate;
}
