import { describe, expect, it } from "vitest";
import { hasSurrogates, isSpaceChar, isSpaceCode } from "./whitespace.js";

describe("whitespace", () => {
  it("isSpaceCode agrees with the \\s of a regular expression on every UTF-16 code unit", () => {
    const differing: number[] = [];
    for (let code = 0; code <= 0xffff; code++) {
      if (isSpaceCode(code) !== /^\s$/u.test(String.fromCharCode(code))) differing.push(code);
    }
    expect(differing).toEqual([]);
  });

  it("isSpaceChar is false for the empty string and for astral code points", () => {
    expect(isSpaceChar("")).toBe(false);
    expect(isSpaceChar("\u{1F600}")).toBe(false);
    expect(isSpaceChar("\u3000")).toBe(true);
  });

  it("hasSurrogates finds astral characters and lone surrogates only", () => {
    expect(hasSurrogates("plain ASCII and é")).toBe(false);
    expect(hasSurrogates("emoji \u{1F600}")).toBe(true);
    expect(hasSurrogates("lone \uDC00")).toBe(true);
  });
});
