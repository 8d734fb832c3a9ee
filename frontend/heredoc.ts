import { ShellWords } from "./shell-words.js";

/** A here-document attached to RUN, COPY or ADD: `<<EOF`, `<<-EOF` (tabs stripped), `<<"EOF"` (no expansion). */
export interface Heredoc {
  readonly name: string;
  /** Whether the content is subject to expansion (the delimiter was not quoted). */
  readonly expand: boolean;
  /** `<<-`: leading tabs are stripped from content lines and the terminator. */
  readonly chomp: boolean;
  readonly fileDescriptor: number;
  /** The content lines, each with its line break, without the terminator line. */
  readonly content: string;
}

const MARKER = /^(\d*)<<(-?)\s*([^<]*)$/u;
const EMPTY = new Map<string, string>();

/** The heredoc a single word introduces (`<<EOF`, `2<<-"END"`), or undefined when it introduces none. */
export function parseHeredocMarker(word: string): Omit<Heredoc, "content"> | undefined {
  const match = MARKER.exec(word);
  if (match === null) return undefined;
  const rest = match[3] ?? "";
  if (rest === "") return undefined;
  let words: string[];
  let rawWords: string[];
  try {
    words = new ShellWords({ skipUnsetEnv: true }).splitWords(rest, EMPTY);
    rawWords = new ShellWords({ skipUnsetEnv: true, rawQuotes: true }).splitWords(rest, EMPTY);
  } catch {
    return undefined;
  }
  const [name] = words;
  const [raw] = rawWords;
  if (words.length !== 1 || name === undefined || raw === undefined) return undefined;
  const quotes = (s: string): number => (s.match(/['"]/gu) ?? []).length;
  return { name, expand: quotes(name) === quotes(raw), chomp: match[2] === "-", fileDescriptor: Number(match[1] || "0") };
}

/** Every heredoc marker in an instruction line, in order (words split as the shell would, quotes kept). */
export function heredocMarkersIn(line: string): Omit<Heredoc, "content">[] {
  let words: string[];
  try {
    words = new ShellWords({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).splitWords(line, EMPTY);
  } catch {
    return [];
  }
  return words.map(parseHeredocMarker).filter((h) => h !== undefined);
}

/** Removes leading tabs from every line (`<<-`). */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gmu, "");
}
