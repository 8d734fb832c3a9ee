/**
 * The line format of kiln's per-path record files (the stat cache, content indexes): a first line
 * naming the format and its version, then one `<field> <field> <path>` line per path (the path
 * last, since it may hold spaces). Parsed into path → `<field> <field>`; a file whose first line
 * is another format (an older version) reads as empty, and malformed lines are skipped.
 */
export function parseRecordLines(text: string, format: string): Map<string, string> {
  const entries = new Map<string, string>();
  const lines = text.split("\n");
  if (lines[0] !== format) return entries;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const first = line.indexOf(" ");
    const second = first < 0 ? -1 : line.indexOf(" ", first + 1);
    if (second < 0) continue;
    entries.set(line.slice(second + 1), line.slice(0, second));
  }
  return entries;
}
