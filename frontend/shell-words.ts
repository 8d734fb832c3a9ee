import { KilnError } from "../solver/llb/index.js";
import { isSpaceChar, isSpaceCode } from "./whitespace.js";

/** A shell-word syntax error (unterminated quote, bad substitution, `${V:?msg}` on an unset V). */
export class ShellWordsError extends KilnError {
  readonly word: string;

  constructor(word: string, why: string) {
    super("KILN_SHELL_WORDS", `Cannot expand "${word}": ${why}`);
    this.word = word;
  }
}

/** Variables visible to an expansion, by name (a Map will do; lowering passes a versioned table). */
export interface ShellEnv {
  get(name: string): string | undefined;
}

export interface ShellWordsOptions {
  /** The Dockerfile's escape token (`# escape=`); default backslash. */
  readonly escapeToken?: string;
  /** Keep quote characters in the result (quotes still group and protect). */
  readonly rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  readonly rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  readonly skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to "". */
  readonly skipUnsetEnv?: boolean;
}

/** The result of expanding one word: the value and which variable names were found or missing. */
export interface ExpandedWord {
  readonly value: string;
  readonly matched: ReadonlySet<string>;
  readonly unmatched: ReadonlySet<string>;
}

const EOF = "";
/** The names of a literal word's expansion: none (shared, and read-only like every ExpandedWord set). */
const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) with the same rules: `$V`, `${V}`,
 * `${V:-w}` `${V-w}` `${V:+w}` `${V+w}` `${V:?m}` `${V?m}`, `${V#p}` `${V##p}` `${V%p}` `${V%%p}`,
 * `${V/p/r}` `${V//p/r}`, single and double quotes, the escape token, positional and special
 * parameters (always unset). Pure: the environment is passed in.
 */
export class ShellWords {
  readonly #options: Required<ShellWordsOptions>;
  /** Matches a character the lexer acts on: `$`, `<`, the escape token and (unless skipped) quotes. */
  readonly #special: RegExp;

  constructor(options: ShellWordsOptions = {}) {
    this.#options = {
      escapeToken: options.escapeToken ?? "\\",
      rawQuotes: options.rawQuotes ?? false,
      rawEscapes: options.rawEscapes ?? false,
      skipProcessQuotes: options.skipProcessQuotes ?? false,
      skipUnsetEnv: options.skipUnsetEnv ?? false,
    };
    const escape = this.#options.escapeToken.replace(/[\\\]^-]/gu, "\\$&");
    this.#special = new RegExp(`[$<${escape}${this.#options.skipProcessQuotes ? "" : `'"`}]`, "u");
  }

  /** Expands `word` as one word (whitespace is kept). Throws ShellWordsError. */
  expandWord(word: string, env: ShellEnv): ExpandedWord {
    if (this.#isLiteral(word)) return { value: word, matched: NO_NAMES, unmatched: NO_NAMES };
    const scan = new WordScanner(word, env, this.#options, false);
    const { value } = scan.processStopOn(EOF, this.#options.rawEscapes);
    return { value, matched: scan.matched, unmatched: scan.unmatched };
  }

  /** Expands `word` and splits the result into words on unquoted, unescaped whitespace. Throws ShellWordsError. */
  splitWords(word: string, env: ShellEnv): string[] {
    if (this.#isLiteral(word)) return splitOnSpace(word);
    const scan = new WordScanner(word, env, this.#options, true);
    return scan.processStopOn(EOF, this.#options.rawEscapes).words;
  }

  /**
   * Whether the lexer would copy `word` through unchanged: no `$`, no `<`, no escape token and no
   * quote it processes. Most words are literal, and scanning them character by character is costly.
   */
  #isLiteral(word: string): boolean {
    return !this.#special.test(word);
  }
}

/** The non-empty runs of non-whitespace in a literal word (what WordCollector makes of it). */
function splitOnSpace(word: string): string[] {
  const words: string[] = [];
  let start = -1;
  for (let i = 0; i < word.length; i++) {
    if (isSpaceCode(word.charCodeAt(i))) {
      if (start !== -1) words.push(word.slice(start, i));
      start = -1;
    } else if (start === -1) start = i;
  }
  if (start !== -1) words.push(word.slice(start));
  return words;
}

const isSpace = isSpaceChar;

/** `[A-Za-z0-9_]`: the common case of a name character, checked without a regular expression. */
function isAsciiNameChar(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return ch.length === 1 && ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f);
}
// No `u` flag: it must match each half of a surrogate pair, not only lone surrogates.
const SURROGATE = /[\uD800-\uDFFF]/;

/** Splits the expansion into words as it is built; a disabled collector (expandWord) does nothing. */
class WordCollector {
  readonly words: string[] = [];
  #buf = "";
  #inWord = false;

  constructor(readonly enabled: boolean) {}

  addChar(ch: string): void {
    if (!this.enabled) return;
    if (isSpace(ch)) {
      if (this.#inWord && this.#buf.length > 0) {
        this.words.push(this.#buf);
        this.#buf = "";
        this.#inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  addRaw(text: string): void {
    if (!this.enabled) return;
    this.#buf += text;
    this.#inWord = true;
  }

  addString(text: string): void {
    if (!this.enabled) return;
    for (const ch of text) this.addChar(ch);
  }

  finish(): string[] {
    if (this.#buf.length > 0) {
      this.words.push(this.#buf);
      this.#buf = "";
    }
    return this.words;
  }
}

class WordScanner {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  /** The code points of `source` (the string itself when it has no surrogate pairs). */
  readonly #chars: string | string[];
  #pos = 0;
  #rawEscapes: boolean;

  constructor(
    readonly source: string,
    readonly env: ShellEnv,
    readonly options: Required<ShellWordsOptions>,
    /** Whether processStopOn also splits the result into words (splitWords needs them, expandWord not). */
    readonly collectWords: boolean,
  ) {
    this.#chars = SURROGATE.test(source) ? Array.from(source) : source;
    this.#rawEscapes = options.rawEscapes;
  }

  peek(): string {
    return this.#chars[this.#pos] ?? EOF;
  }

  next(): string {
    const ch = this.#chars[this.#pos] ?? EOF;
    if (ch !== EOF) this.#pos++;
    return ch;
  }

  fail(why: string): never {
    throw new ShellWordsError(this.source, why);
  }

  processStopOn(stop: string, rawEscapes: boolean): { value: string; words: string[] } {
    const saved = this.#rawEscapes;
    this.#rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new WordCollector(this.collectWords);
      const escape = this.options.escapeToken;
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return { value: result, words: words.finish() };
        }
        if (ch === "$") {
          const value = this.processDollar();
          result += value;
          words.addString(value);
        } else if (ch === "<") {
          const value = this.processPossibleHeredoc();
          result += value;
          words.addRaw(value);
        } else if (!this.options.skipProcessQuotes && (ch === "'" || ch === '"')) {
          const value = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += value;
          words.addRaw(value);
        } else {
          let c = this.next();
          if (c === escape) {
            if (this.#rawEscapes) {
              words.addRaw(c);
              result += c;
            }
            c = this.next();
            if (c === EOF) break;
            words.addRaw(c);
          } else {
            words.addChar(c);
          }
          result += c;
        }
      }
      if (stop !== EOF) this.fail(`unexpected end of statement while looking for matching ${stop}`);
      return { value: result, words: words.finish() };
    } finally {
      this.#rawEscapes = saved;
    }
  }

  processSingleQuote(): string {
    let result = this.options.rawQuotes ? this.next() : (this.next(), "");
    for (;;) {
      const ch = this.next();
      if (ch === EOF) this.fail("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") return this.options.rawQuotes ? result + ch : result;
      result += ch;
    }
  }

  processDoubleQuote(): string {
    let result = this.options.rawQuotes ? this.next() : (this.next(), "");
    const escape = this.options.escapeToken;
    for (;;) {
      const peek = this.peek();
      if (peek === EOF) this.fail("unexpected end of statement while looking for matching double-quote");
      if (peek === '"') {
        const ch = this.next();
        return this.options.rawQuotes ? result + ch : result;
      }
      if (peek === "$") {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === escape) {
        if (this.#rawEscapes) result += ch;
        const after = this.peek();
        if (after === EOF) continue;
        if (after === '"' || after === "$" || after === escape) ch = this.next();
      }
      result += ch;
    }
  }

  processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== "<") return "<";
    this.next();
    let space = "";
    while (this.peek() === " " || this.peek() === "\t" || this.peek() === "\r") space += this.next();
    return "<<" + space;
  }

  processName(): string {
    let name = "";
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name === "" && /^\p{Nd}$/u.test(ch)) {
        while (/^\p{Nd}$/u.test(this.peek())) name += this.next();
        return name;
      }
      if (name === "" && "@*#?-$!0".includes(ch)) return this.next();
      if (!isAsciiNameChar(ch) && !/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }

  getEnv(name: string): string | undefined {
    const value = this.env.get(name);
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  processDollar(): string {
    this.next();
    if (this.peek() !== "{") {
      const name = this.processName();
      if (name === "") return "$";
      const value = this.getEnv(name);
      if (value === undefined && this.options.skipUnsetEnv) return "$" + name;
      return value ?? "";
    }
    this.next();
    const first = this.peek();
    if (first === EOF) this.fail("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") this.fail("syntax error: bad substitution");
    const name = this.processName();
    let ch = this.next();
    let modifier = ch;
    let nullIsUnset = false;
    switch (ch) {
      case "}": {
        const value = this.getEnv(name);
        if (value === undefined && this.options.skipUnsetEnv) return `\${${name}}`;
        return value ?? "";
      }
      case ":":
      case "+":
      case "-":
      case "?":
      case "#":
      case "%": {
        if (ch === ":") {
          nullIsUnset = true;
          ch = this.next();
          modifier += ch;
        }
        const raw = ch === "#" || ch === "%";
        if (nullIsUnset && raw) this.fail(`unsupported modifier (${modifier}) in substitution`);
        if (nullIsUnset && !"+-?".includes(ch)) this.fail(`unsupported modifier (${modifier}) in substitution`);
        let word: string;
        try {
          word = this.processStopOn("}", raw).value;
        } catch (error) {
          if (this.peek() === EOF) this.fail("syntax error: missing '}'");
          throw error;
        }
        const value = this.getEnv(name);
        if (this.options.skipUnsetEnv && value === undefined) return `\${${name}${modifier}${word}}`;
        const unset = value === undefined || (nullIsUnset && value === "");
        switch (ch) {
          case "-":
            return unset ? word : (value ?? "");
          case "+":
            return unset ? "" : word;
          case "?":
            if (value === undefined) this.fail(`${name}: ${word !== "" ? word : "is not allowed to be unset"}`);
            if (nullIsUnset && value === "") this.fail(`${name}: ${word !== "" ? word : "is not allowed to be empty"}`);
            return value;
          default: {
            let pattern = word;
            let greedy = false;
            if (pattern.startsWith(ch)) {
              greedy = true;
              pattern = pattern.slice(1);
            }
            return ch === "%" ? this.trimSuffix(pattern, value ?? "", greedy) : this.trimPrefix(pattern, value ?? "", greedy);
          }
        }
      }
      case "/": {
        const all = this.peek() === "/";
        if (all) this.next();
        let pattern: string;
        try {
          pattern = this.processStopOn("/", true).value;
        } catch (error) {
          if (this.peek() === EOF) this.fail("syntax error: missing '/' in ${}");
          throw error;
        }
        let replacement: string;
        try {
          replacement = this.processStopOn("}", true).value;
        } catch (error) {
          if (this.peek() === EOF) this.fail("syntax error: missing '}'");
          throw error;
        }
        const value = this.getEnv(name);
        if (this.options.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
        const re = this.shellPattern(pattern, true, false, all);
        const subject = value ?? "";
        if (all) return subject.replace(re, () => replacement);
        const m = re.exec(subject);
        return m === null ? subject : subject.slice(0, m.index) + replacement + subject.slice(m.index + m[0].length);
      }
      case EOF:
        return this.fail("syntax error: missing '}'");
      default:
        return this.fail(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  /** A shell glob (`*`, `?`, `\` escapes) as a RegExp, like lex.go's convertShellPatternToRegex. */
  shellPattern(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
    const chars = Array.from(pattern);
    let out = anchored ? "^" : "";
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i] as string;
      if (ch === "*") out += greedy ? "[^\\n]*" : "[^\\n]*?";
      else if (ch === "?") out += "[^\\n]";
      else if (ch === "\\") {
        const next = chars[i + 1];
        if (next === "}" || next === "/") continue;
        i++;
        if (next !== "*" && next !== "?" && next !== "\\") this.fail(`invalid pattern (${pattern}) in substitution: invalid escape '\\${next ?? ""}'`);
        out += "\\" + next;
      } else out += /[\\^$.*+?()[\]{}|/-]/u.test(ch) ? "\\" + ch : ch;
    }
    return new RegExp(out, global ? "gu" : "u");
  }

  trimPrefix(pattern: string, value: string, greedy: boolean): string {
    const m = this.shellPattern(pattern, greedy, true).exec(value);
    return m === null ? value : value.slice(m[0].length);
  }

  trimSuffix(pattern: string, value: string, greedy: boolean): string {
    return reverse(this.trimPrefix(reversePattern(pattern), reverse(value), greedy));
  }
}

function reverse(text: string): string {
  return Array.from(text).reverse().join("");
}

/** Reverses a pattern keeping `\x` escapes in front of the character they escape. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = [];
  for (let i = 0; i < chars.length; ) {
    if (chars[i] === "\\" && i !== chars.length - 1) {
      out.unshift("\\" + (chars[i + 1] as string));
      i += 2;
    } else {
      out.unshift(chars[i] as string);
      i++;
    }
  }
  return out.join("");
}
