import { describe, expect, it } from "vitest";
import { compileModeChange, FileModeError } from "./file-mode.js";

const TABLE: readonly [number | string, number, boolean, number][] = [
  [0o755, 0o644, false, 0o755],
  ["0640", 0o777, false, 0o640],
  ["u+x", 0o644, false, 0o744],
  ["+x", 0o644, false, 0o755],
  ["go-w", 0o666, false, 0o644],
  ["a+X", 0o644, false, 0o644],
  ["a+X", 0o644, true, 0o755],
  ["a+X", 0o744, false, 0o755],
  ["u=rw,go=r", 0o777, false, 0o644],
  ["g=u", 0o640, false, 0o660],
  ["o=", 0o777, false, 0o770],
  ["u+s", 0o755, false, 0o4755],
  ["+t", 0o777, true, 0o1777],
];

describe("compileModeChange()", () => {
  for (const [mode, current, isDir, expected] of TABLE) {
    it(`applies ${JSON.stringify(mode)} to ${current.toString(8)}${isDir ? " (directory)" : ""} giving ${expected.toString(8)}`, () => {
      expect(compileModeChange(mode)?.(current, isDir)).toBe(expected);
    });
  }

  it("keeps modes for null", () => {
    expect(compileModeChange(null)).toBeUndefined();
  });

  it("rejects a malformed symbolic mode", () => {
    expect(() => compileModeChange("u+q")).toThrow(FileModeError);
  });
});
