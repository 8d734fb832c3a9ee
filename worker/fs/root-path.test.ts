import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, onTestFinished, test } from "vitest";
import { cleanAbsolute, resolveComponents, resolveInRoot } from "./root-path.js";

async function tree(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "kiln-root-path-"));
  onTestFinished(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, "usr/lib"), { recursive: true });
  await mkdir(join(root, "run"));
  await symlink("usr/lib", join(root, "lib"));
  await symlink("/run", join(root, "var-run"));
  await symlink("../../../../..", join(root, "up"));
  await symlink("/", join(root, "slash"));
  await symlink("loop-b", join(root, "loop-a"));
  await symlink("loop-a", join(root, "loop-b"));
  return root;
}

describe("resolveInRoot()", () => {
  test("follows a relative symlink inside the root", async () => {
    const root = await tree();
    expect(resolveInRoot(root, "/lib/libc.so")).toBe(join(root, "usr/lib/libc.so"));
  });

  test("takes an absolute symlink target from the root, not from the host's /", async () => {
    const root = await tree();
    expect(resolveInRoot(root, "/var-run/x")).toBe(join(root, "run/x"));
    expect(resolveInRoot(root, "/slash/etc/passwd")).toBe(join(root, "etc/passwd"));
  });

  test("never lets .. climb above the root, in the path or in a link target", async () => {
    const root = await tree();
    expect(resolveInRoot(root, "/../../etc")).toBe(join(root, "etc"));
    expect(resolveInRoot(root, "/up/etc")).toBe(join(root, "etc"));
  });

  test("does not follow the last component with followLast: false", async () => {
    const root = await tree();
    expect(resolveInRoot(root, "/lib", { followLast: false })).toBe(join(root, "lib"));
    expect(resolveInRoot(root, "/lib")).toBe(join(root, "usr/lib"));
  });

  test("refuses a symlink loop with KILN_PATH_SYMLINK_LOOP", async () => {
    const root = await tree();
    expect(() => resolveInRoot(root, "/loop-a/x")).toThrow(expect.objectContaining({ code: "KILN_PATH_SYMLINK_LOOP" }));
  });
});

describe("resolveComponents()", () => {
  test("asks lookup about each component with its resolved parents", () => {
    const asked: string[] = [];
    const result = resolveComponents("a/b/c", (parts) => {
      asked.push(parts.join("/"));
      return parts.join("/") === "a/b" ? { kind: "symlink", target: "/x" } : { kind: "directory" };
    });
    expect(result).toEqual(["x", "c"]);
    expect(asked).toEqual(["a", "a/b", "x", "x/c"]);
  });
});

test("cleanAbsolute() makes a path absolute and clean", () => {
  expect(cleanAbsolute("a/./b/../c/")).toBe("/a/c");
  expect(cleanAbsolute("../..")).toBe("/");
});
