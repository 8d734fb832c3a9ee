/**
 * Whitespace tests without regular expressions, for the parser's and the shell lexer's per-character
 * loops: `isSpaceCode(c)` is true exactly for the UTF-16 code units JavaScript's `\s` matches (ASCII
 * tab, line feed, vertical tab, form feed, carriage return and space, plus Unicode's space
 * separators, line and paragraph separators and the byte-order mark).
 */
export function isSpaceCode(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return (
    code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 ||
    code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff
  );
}

/** Whether `ch` (one code point, or "") is a single whitespace character as `/^\s$/u` tests it. */
export function isSpaceChar(ch: string): boolean {
  return ch.length === 1 && isSpaceCode(ch.charCodeAt(0));
}

/** Whether `text` holds a surrogate code unit (then per-character loops must walk code points). */
export function hasSurrogates(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdfff) return true;
  }
  return false;
}
