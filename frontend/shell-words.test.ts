import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ShellWords, ShellWordsError } from "./shell-words.js";

const TABLE = new URL("../test/fixtures/shell-words.table", import.meta.url);
const ENV = new Map([
  ["HOME", "/root"],
  ["SHELL", "sh"],
  ["GREETING", "héllo wörld"],
  ["EMPTY", ""],
  ["PATHS", "/a/b/c.tar.gz"],
  ["LIST", "a b  c"],
]);

interface Row {
  readonly line: number;
  readonly mode: string;
  readonly input: string;
  readonly expected: string;
}

function readTable(): Row[] {
  const rows: Row[] = [];
  readFileSync(TABLE, "utf8").split("\n").forEach((text, index) => {
    if (text.trim() === "" || text.startsWith("#")) return;
    const first = text.indexOf("|");
    const last = text.lastIndexOf("|");
    if (first === -1 || first === last) throw new Error(`shell-words.table:${index + 1}: expected "MODE | INPUT | EXPECTED"`);
    rows.push({ line: index + 1, mode: text.slice(0, first).trim(), input: text.slice(first + 1, last).trim(), expected: text.slice(last + 1).trim() });
  });
  return rows;
}

describe("ShellWords (test/fixtures/shell-words.table)", () => {
  it.each(readTable())("line $line: $mode $input → $expected", ({ mode, input, expected }) => {
    const lexer = new ShellWords({ escapeToken: mode === "escape-tick-word" ? "`" : "\\" });
    const run = (): unknown => (mode === "words" ? lexer.splitWords(input, ENV) : lexer.expandWord(input, ENV).value);
    if (expected === "error") {
      expect(run).toThrow(ShellWordsError);
      return;
    }
    expect(run()).toEqual(mode === "words" ? JSON.parse(expected) : expected);
  });
});

describe("ShellWords", () => {
  it("expandWord() reports which variables were found and which were missing", () => {
    const result = new ShellWords().expandWord("$HOME ${NOPE:-x} ${EMPTY}", ENV);
    expect([...result.matched].sort()).toEqual(["EMPTY", "HOME"]);
    expect([...result.unmatched]).toEqual(["NOPE"]);
  });

  it("expandWord() with skipUnsetEnv keeps references to unset variables as written", () => {
    const lexer = new ShellWords({ skipUnsetEnv: true });
    expect(lexer.expandWord("$NOPE ${NOPE} ${NOPE:-d} $HOME", ENV).value).toBe("$NOPE ${NOPE} ${NOPE:-d} /root");
  });

  it("expandWord() with rawQuotes keeps the quote characters", () => {
    expect(new ShellWords({ rawQuotes: true }).expandWord(`echo "$HOME" '$HOME'`, ENV).value).toBe(`echo "/root" '$HOME'`);
  });

  it("names the word in its error message", () => {
    expect(() => new ShellWords().expandWord("a${B", ENV)).toThrow(`Cannot expand "a\${B": syntax error: missing '}'`);
  });
});
