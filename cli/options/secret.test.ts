import { describe, expect, test } from "vitest";
import { parseSecretFlags, parseSshFlags } from "./secret.js";

describe("parseSecretFlags()", () => {
  test("reads docker build's file, env and id-only forms", () => {
    expect(parseSecretFlags(["id=a,src=tok.txt", "id=b,source=/abs", "id=c,env=VAR", "id=d,type=env", "id=HOME", "id=e"], "/ctx", { HOME: "/root" })).toEqual({
      a: { file: "/ctx/tok.txt" },
      b: { file: "/abs" },
      c: { env: "VAR" },
      d: { env: "d" },
      HOME: { env: "HOME" },
      e: { file: "/ctx/e" },
    });
  });

  test("refuses a value without an id", () => {
    expect(() => parseSecretFlags(["src=x"])).toThrow('Cannot use --secret "src=x": it needs id=ID');
  });
});

describe("parseSshFlags()", () => {
  test("takes $SSH_AUTH_SOCK for a bare id and a path after =", () => {
    expect(parseSshFlags(["default", "work=agent.sock"], "/ctx", { SSH_AUTH_SOCK: "/run/agent" })).toEqual({
      default: { socket: "/run/agent" },
      work: { socket: "/ctx/agent.sock" },
    });
  });

  test("says to give a socket when SSH_AUTH_SOCK is not set", () => {
    expect(() => parseSshFlags(["default"], "/", {})).toThrow("SSH_AUTH_SOCK is not set");
  });
});
