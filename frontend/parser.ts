import type { SourceRange } from "../solver/llb/index.js";
import { DirectiveReader, escapeTokenOf, type Directive } from "./directives.js";
import { FrontendError } from "./errors.js";
import { heredocMarkersIn, type Heredoc } from "./heredoc.js";
import type { SourceFile } from "./source-file.js";
import { hasSurrogates, isSpaceCode } from "./whitespace.js";

/**
 * One instruction as written: the syntax layer below typed instructions (BuildKit's parser.Node).
 * `args` are split by the instruction's line rule (JSON array, whitespace, key=value words…);
 * nothing is expanded yet.
 */
export interface InstructionNode {
  /** The keyword as written (`run`, `RUN`, `Run`). */
  readonly keyword: string;
  /** The keyword in lower case. */
  readonly command: string;
  /** Leading `--name[=value]` words, quotes removed. */
  readonly flags: readonly string[];
  readonly args: readonly string[];
  /** The args came from a JSON array (exec form). */
  readonly json: boolean;
  readonly heredocs: readonly Heredoc[];
  /** The logical line, continuations joined (BuildKit's `Original`). */
  readonly original: string;
  /** Whole lines from the keyword to the last continuation or heredoc line. */
  readonly range: SourceRange;
  /** The comment lines right above the instruction. */
  readonly comments: readonly string[];
  /** ONBUILD's trigger instruction. */
  readonly child?: InstructionNode;
}

/** A parser-level warning (only empty continuation lines, as in BuildKit). */
export interface ParseWarning {
  readonly rule: "NoEmptyContinuation";
  readonly range: SourceRange;
}

/** The syntax tree of a Dockerfile. */
export interface SyntaxTree {
  readonly source: SourceFile;
  readonly directives: readonly Directive[];
  readonly escapeToken: string;
  readonly nodes: readonly InstructionNode[];
  readonly warnings: readonly ParseWarning[];
}

const HEREDOC_COMMANDS = new Set(["run", "copy", "add"]);
const WHITESPACE = /[\t\v\f\r ]+/u;
const SPACES = /\s+/u;
/** The empty list nodes share for no comments and no heredocs (never written to). */
const NONE: readonly never[] = Object.freeze([]);

/**
 * Parses Dockerfile text into instruction nodes with BuildKit's line rules: directives first,
 * comments dropped (also inside continuations), the escape token at a line end continues the line,
 * empty lines inside a continuation are skipped with a warning, and RUN/COPY/ADD heredocs read
 * the lines after the instruction. Throws FrontendError with the lines involved.
 */
export function parseSyntax(source: SourceFile): SyntaxTree {
  const raw = source.text.split("\n");
  if (raw.length > 0 && raw[raw.length - 1] === "") raw.pop();
  if (raw[0]?.startsWith("\uFEFF")) raw[0] = raw[0].slice(1);
  const directivesReader = new DirectiveReader();
  let escapeToken = "\\";
  const nodes: InstructionNode[] = [];
  const warnings: ParseWarning[] = [];
  let comments: readonly string[] = NONE;
  let index = 0; // next raw line to read (0-based)

  // The directive block ends for good at the first line that is not a directive.
  let directivesDone = false;
  const readDirective = (line: string, lineNumber: number): boolean => {
    if (directivesDone) return false;
    const directive = directivesReader.read(line, lineNumber, source.lineRange(lineNumber));
    if (directive?.name === "escape") escapeToken = escapeTokenOf(directive);
    if (directive === undefined) directivesDone = true;
    return directive !== undefined;
  };

  while (index < raw.length) {
    const rawLine = trimNewline(raw[index] as string);
    const lineNumber = ++index;
    const stripped = rawLine.trimStart();
    if (stripped.startsWith("#")) {
      const comment = stripped.slice(1).trim();
      comments = comment === "" ? NONE : [...comments, comment];
    }
    if (readDirective(stripped, lineNumber)) {
      comments = comments.slice(0, -1);
      continue;
    }
    const startLine = lineNumber;
    let [text, ended] = trimContinuation(stripped.startsWith("#") ? "" : stripped, escapeToken);
    if (ended && text.length === 0) continue;
    let emptyContinuation = false;
    while (!ended && index < raw.length) {
      const next = trimNewline(raw[index] as string);
      index++;
      if (isComment(next)) continue;
      if (next.trim() === "") {
        emptyContinuation = true;
        continue;
      }
      const [part, partEnded] = trimContinuation(next, escapeToken);
      text += part;
      ended = partEnded;
    }
    let endLine = index;
    if (emptyContinuation) warnings.push({ rule: "NoEmptyContinuation", range: source.lineRange(endLine) });
    const range = (): SourceRange => source.lineRange(startLine, endLine);
    let node: InstructionNode;
    try {
      node = nodeFromLine(text, escapeToken, comments, source.lineRange(startLine, endLine));
    } catch (error) {
      if (error instanceof FrontendError) throw new FrontendError(error.code, error.message, { ranges: [range()], source });
      throw error;
    }
    const heredocTarget = node.command === "onbuild" ? node.child : node;
    if (heredocTarget !== undefined && HEREDOC_COMMANDS.has(heredocTarget.command) && !heredocTarget.json && text.includes("<<")) {
      const heredocs: Heredoc[] = [];
      for (const marker of heredocMarkersIn(text)) {
        let content = "";
        let terminated = false;
        while (index < raw.length) {
          const line = raw[index] as string;
          index++;
          endLine = index;
          let candidate = trimNewline(line);
          if (marker.chomp) candidate = candidate.replace(/^\t+/u, "");
          if (candidate === marker.name) {
            terminated = true;
            break;
          }
          content += line + (index < raw.length || source.text.endsWith("\n") ? "\n" : "");
        }
        if (!terminated) {
          throw new FrontendError("KILN_PARSE_HEREDOC_UNTERMINATED", `Cannot find the end of heredoc "${marker.name}": no line "${marker.name}" follows`, {
            ranges: [range()],
            source,
            hint: `End the here-document with a line containing only ${marker.name}`,
          });
        }
        heredocs.push({ ...marker, content });
      }
      node = withHeredocs(node, heredocs, range());
    }
    nodes.push(node);
    comments = NONE;
  }
  if (nodes.length === 0) {
    throw new FrontendError("KILN_PARSE_EMPTY", "Cannot build this Dockerfile: it has no instructions", { ranges: [source.lineRange(Math.max(1, raw.length))], source });
  }
  return { source, directives: directivesReader.directives, escapeToken, nodes, warnings };
}

function withHeredocs(node: InstructionNode, heredocs: readonly Heredoc[], range: SourceRange): InstructionNode {
  if (node.child !== undefined) return { ...node, range, child: { ...node.child, heredocs, range } };
  return { ...node, range, heredocs };
}

/**
 * `line` without a continuation (the escape token, then only spaces and tabs, at its end, not
 * itself escaped) and whether the line ends the instruction (it had none).
 */
function trimContinuation(line: string, escape: string): [string, boolean] {
  let end = line.length;
  for (let c = line.charCodeAt(end - 1); c === 0x20 || c === 0x09; c = line.charCodeAt(end - 1)) end--;
  if (end === 0 || line[end - 1] !== escape) return [line, true];
  if (end === 1) return ["", false];
  if (line[end - 2] === escape) return [line, true];
  return [line.slice(0, end - 1), false];
}

function trimNewline(line: string): string {
  let end = line.length;
  for (let c = line.charCodeAt(end - 1); c === 0x0d || c === 0x0a; c = line.charCodeAt(end - 1)) end--;
  return end === line.length ? line : line.slice(0, end);
}

function isComment(line: string): boolean {
  return line.trimStart().startsWith("#");
}

/** Splits a logical line into keyword, flags and args (BuildKit's newNodeFromLine). */
export function nodeFromLine(line: string, escapeToken: string, comments: readonly string[], range: SourceRange): InstructionNode {
  const trimmed = line.trim();
  const split = WHITESPACE.exec(trimmed);
  const keyword = split === null ? trimmed : trimmed.slice(0, split.index);
  const restOfLine = split === null ? "" : trimmed.slice(split.index + split[0].length);
  const { flags, rest } = extractFlags(restOfLine, escapeToken);
  const args = rest.trim();
  const command = keyword.toLowerCase();
  let words: { args: string[]; json: boolean };
  let child: InstructionNode | undefined;
  switch (command) {
    case "add":
    case "copy":
    case "volume":
      words = maybeJsonList(args);
      break;
    case "arg":
      words = { args: splitQuotedWords(args, escapeToken), json: false };
      break;
    case "cmd":
    case "entrypoint":
    case "run":
    case "shell":
      words = maybeJson(args);
      break;
    case "env":
    case "label":
      words = { args: nameValueArgs(args, keyword.toUpperCase(), escapeToken), json: false };
      break;
    case "expose":
    case "from":
      words = { args: whitespaceWords(args), json: false };
      break;
    case "healthcheck":
      words = healthcheckArgs(args);
      break;
    case "maintainer":
    case "stopsignal":
    case "user":
    case "workdir":
      words = { args: args === "" ? [] : [args], json: false };
      break;
    case "onbuild":
      words = { args: [], json: false };
      if (args !== "") child = nodeFromLine(args, escapeToken, [], range);
      break;
    default:
      words = { args: [], json: false };
  }
  // One object literal per node (not spreads of a shared base): V8 builds these far faster.
  const node: InstructionNode = { keyword, command, flags, original: line, range, comments, heredocs: NONE, args: words.args, json: words.json };
  return child === undefined ? node : { ...node, child };
}

function whitespaceWords(rest: string): string[] {
  return rest === "" ? [] : rest.split(new RegExp(WHITESPACE.source, "gu"));
}

function maybeJson(rest: string): { args: string[]; json: boolean } {
  if (rest === "") return { args: [], json: false };
  const json = parseJsonArray(rest);
  return json === undefined ? { args: [rest], json: false } : { args: json, json: true };
}

function maybeJsonList(rest: string): { args: string[]; json: boolean } {
  const json = parseJsonArray(rest);
  return json === undefined ? { args: whitespaceWords(rest), json: false } : { args: json, json: true };
}

/** A JSON array of strings, undefined when `rest` is not a JSON array; throws when it holds non-strings. */
function parseJsonArray(rest: string): string[] | undefined {
  const text = rest.replace(/^\s+/u, "");
  if (!text.startsWith("[")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  if (!parsed.every((v) => typeof v === "string")) {
    throw new FrontendError("KILN_PARSE_JSON_NOT_STRINGS", "Cannot use this JSON array: when using JSON array syntax, arrays must be comprised of strings only");
  }
  return parsed as string[];
}

function healthcheckArgs(rest: string): { args: string[]; json: boolean } {
  const match = /^(\S+)\s*(.*)$/su.exec(rest);
  if (match === null) return { args: [], json: false };
  const cmd = maybeJson(match[2] ?? "");
  return { args: [match[1] as string, ...cmd.args], json: cmd.json };
}

/** Splits on whitespace outside quotes, keeping quotes and escapes in the words (BuildKit's parseWords). */
export function splitQuotedWords(rest: string, escapeToken: string): string[] {
  // Without quotes or escapes, the words are the runs of non-whitespace.
  if (!rest.includes("'") && !rest.includes('"') && !rest.includes(escapeToken)) {
    const trimmed = rest.trim();
    return trimmed === "" ? [] : trimmed.split(SPACES);
  }
  // Code points, as BuildKit walks runes; plain indexing when there is no surrogate pair.
  const chars: string | string[] = hasSurrogates(rest) ? Array.from(rest) : rest;
  const n = chars.length;
  const isSpaceAt = (i: number): boolean => {
    const ch = chars[i] as string;
    return ch.length === 1 && isSpaceCode(ch.charCodeAt(0));
  };
  // Every character of a word is kept except a trailing escape token, so a word is always the
  // slice chars[start, end): track the bounds instead of concatenating character by character.
  const words: string[] = [];
  const take = (start: number, end: number): string => (typeof chars === "string" ? chars.slice(start, end) : chars.slice(start, end).join(""));
  let start = 0;
  let end = 0;
  let inWord = false;
  let quote = "";
  let blankOk = false;
  for (let i = 0; i < n; i++) {
    const ch = chars[i] as string;
    if (!inWord && quote === "") {
      if (isSpaceAt(i)) continue;
      inWord = true;
      start = end = i;
    }
    if (quote === "") {
      if (isSpaceAt(i)) {
        if (blankOk || end > start) words.push(take(start, end));
        start = end = i + 1;
        inWord = false;
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      }
      if (ch === escapeToken) {
        if (i + 1 === n) continue;
        i++;
      }
      end = i + 1;
      continue;
    }
    if (ch === quote) quote = "";
    if (ch === escapeToken && quote !== "'" && quote !== "") {
      if (i + 1 === n) {
        quote = "";
        continue;
      }
      i++;
    }
    end = i + 1;
  }
  if (inWord && (blankOk || end > start)) words.push(take(start, end));
  return words;
}

/** ENV/LABEL arguments as BuildKit's parseNameVal: flat triples of key, value, delimiter ("=" or ""). */
function nameValueArgs(rest: string, keyword: string, escapeToken: string): string[] {
  const words = splitQuotedWords(rest, escapeToken);
  if (words.length === 0) return [];
  if (!(words[0] as string).includes("=")) {
    const match = WHITESPACE.exec(rest);
    if (match === null) throw new FrontendError("KILN_PARSE_ARGUMENTS", `Cannot parse ${keyword}: it must have two arguments`);
    return [rest.slice(0, match.index), rest.slice(match.index + match[0].length), ""];
  }
  const out: string[] = [];
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq === -1) throw new FrontendError("KILN_PARSE_ARGUMENTS", `Cannot parse ${keyword}: can't find "=" in "${word}", it must be of the form name=value`);
    out.push(word.slice(0, eq), word.slice(eq + 1), "=");
  }
  return out;
}

/** Leading `--flag` words of an argument string (BuildKit's extractBuilderFlags). */
export function extractFlags(line: string, escapeToken: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let pos = 0;
  const n = line.length;
  for (;;) {
    while (pos < n && isSpaceCode(line.charCodeAt(pos))) pos++;
    if (pos >= n) return { flags, rest: "" };
    if (!(line[pos] === "-" && line[pos + 1] === "-")) return { flags, rest: line.slice(pos) };
    let word = "";
    let quote = "";
    let blankOk = false;
    for (; pos < n; pos++) {
      let ch = line[pos] as string;
      if (quote === "") {
        if (isSpaceCode(ch.charCodeAt(0))) break;
        if (ch === "'" || ch === '"') {
          quote = ch;
          blankOk = true;
          continue;
        }
      } else if (ch === quote) {
        quote = "";
        continue;
      }
      if (ch === escapeToken) {
        if (pos + 1 === n) {
          quote = "";
          continue;
        }
        ch = line[++pos] as string;
      }
      word += ch;
    }
    if (word === "--") return { flags, rest: line.slice(pos) };
    if (blankOk || word.length > 0) flags.push(word);
  }
}
