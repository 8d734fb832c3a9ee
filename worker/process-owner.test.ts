import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { ownerAlive, ownerInName, ownerTag } from "./process-owner.js";

describe("owner tags", () => {
  test("ownerAlive() is true for this process and false once a process has exited", () => {
    expect(ownerAlive(ownerTag())).toBe(true);
    const child = spawnSync("true");
    expect(ownerAlive(`${child.pid}.1`)).toBe(false);
  });

  test("ownerAlive() is false for a live pid with another start time (a reused pid)", () => {
    const [pid, start] = ownerTag().split(".");
    expect(ownerAlive(`${pid}.${Number(start) + 1}`)).toBe(false);
  });

  test("ownerAlive() treats an unparsable tag as alive, so unknown state is never removed", () => {
    expect(ownerAlive("not-a-tag")).toBe(true);
  });

  test("ownerInName() finds the tag in mount-point and container names", () => {
    expect(ownerInName("run-123.456-AbC123")).toBe("123.456");
    expect(ownerInName("kiln-9.8-ff00")).toBe("9.8");
    expect(ownerInName("run-AbC123")).toBeUndefined();
  });
});
