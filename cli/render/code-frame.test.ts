import { describe, expect, test } from "vitest";
import { renderCodeFrame } from "./code-frame.js";

const source = { name: "Dockerfile", data: "FROM busybox\nWORKDIR /app\nCOPY . .\nRUN make test\nCMD [\"./app\"]\n" };

describe("renderCodeFrame()", () => {
  test("marks the failing line with context around it, BuildKit style", () => {
    const frame = renderCodeFrame(source, [{ start: { line: 4, character: 0 }, end: { line: 4, character: 13 } }]);
    expect(frame).toBe(
      [
        "Dockerfile:4",
        "--------------------",
        "   2 |     WORKDIR /app",
        "   3 |     COPY . .",
        "   4 | >>> RUN make test",
        "   5 |     CMD [\"./app\"]",
        "--------------------",
        "",
      ].join("\n"),
    );
  });

  test("puts a caret under a range that covers part of a line", () => {
    const frame = renderCodeFrame(source, [{ start: { line: 1, character: 5 }, end: { line: 1, character: 12 } }]);
    expect(frame).toContain("   1 | >>> FROM busybox\n" + " ".repeat(16) + "^^^^^^^\n");
  });
});
