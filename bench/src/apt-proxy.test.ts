import { describe, expect, test } from "vitest";
import { firstMirror } from "./apt-proxy.js";

describe("firstMirror", () => {
  test("takes the first URIs entry of a deb822 sources file", () => {
    const text = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\n";
    expect(firstMirror(text).href).toBe("http://mirror.invalid/debian");
  });

  test("refuses sources without a URIs line or with an HTTPS mirror", () => {
    expect(() => firstMirror("Types: deb\n")).toThrow(/URIs/);
    expect(() => firstMirror("URIs: https://mirror.invalid/debian\n")).toThrow(/plain HTTP/);
  });
});
