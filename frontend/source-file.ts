import type { SourceInfo, SourcePosition, SourceRange } from "../solver/llb/index.js";

/**
 * A Dockerfile (or .dockerignore) as text with its line table. Lines are 1-based and characters
 * 0-based (UTF-16 code units), as in SourceRange. Immutable.
 */
export interface SourceFile {
  readonly name: string;
  readonly text: string;
  /** Number of lines (a trailing newline does not start a new line). */
  readonly lineCount: number;
  /** The text of 1-based `line` without its line break ("" when out of range). */
  lineText(line: number): string;
  /** Offset in `text` → position. */
  positionAt(offset: number): SourcePosition;
  /** Position → offset in `text` (clamped to the text). */
  offsetAt(position: SourcePosition): number;
  /** The range covering whole lines `startLine`..`endLine` (1-based, inclusive). */
  lineRange(startLine: number, endLine?: number): SourceRange;
  /** The file as it travels inside a Definition's source map. */
  toSourceInfo(): SourceInfo;
}

/** Makes a SourceFile; `text` is kept as given (a BOM or CRLF line ends stay in it). */
export function createSourceFile(name: string, text: string): SourceFile {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  if (starts.length > 1 && starts[starts.length - 1] === text.length) starts.pop();
  const lineCount = text.length === 0 ? 0 : starts.length;
  const info: SourceInfo = { name, data: text, language: "Dockerfile" };
  /** The end offset of 1-based `line` without its line break and one carriage return before it (-1 when out of range). */
  const lineEnd = (line: number): number => {
    const start = starts[line - 1];
    if (start === undefined || line < 1) return -1;
    const next = starts[line];
    const end = next === undefined ? text.length : next - 1;
    return end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
  };
  const lineText = (line: number): string => {
    const end = lineEnd(line);
    return end === -1 ? "" : text.slice(starts[line - 1], end);
  };
  return {
    name,
    text,
    lineCount,
    lineText,
    positionAt(offset: number): SourcePosition {
      const clamped = Math.max(0, Math.min(offset, text.length));
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((starts[mid] as number) <= clamped) lo = mid;
        else hi = mid - 1;
      }
      return { line: lo + 1, character: clamped - (starts[lo] as number) };
    },
    offsetAt(position: SourcePosition): number {
      const start = starts[Math.max(0, Math.min(position.line - 1, starts.length - 1))] as number;
      return Math.min(text.length, start + Math.max(0, position.character));
    },
    lineRange(startLine: number, endLine = startLine): SourceRange {
      const end = lineEnd(endLine);
      return { start: { line: startLine, character: 0 }, end: { line: endLine, character: end === -1 ? 0 : end - (starts[endLine - 1] as number) } };
    },
    toSourceInfo: () => info,
  };
}
