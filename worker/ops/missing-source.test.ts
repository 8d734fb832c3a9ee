import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closestExistingPath, editDistance, existsInRoot } from "./missing-source.js";

describe("missing copy sources", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "kiln-missing-"));
    for (const path of ["src/main.go", "src/util.go", "config.yaml", "cmd/tool/run.sh"]) {
      await mkdir(join(root, path, ".."), { recursive: true });
      await writeFile(join(root, path), "x");
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("editDistance() counts an adjacent transposition as one edit", () => {
    expect(editDistance("mian", "main")).toBe(1);
    expect(editDistance("config.yml", "config.yaml")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  test("closestExistingPath() finds a typo of a nested path", async () => {
    expect(await closestExistingPath(root, "/src/mian.go")).toBe("/src/main.go");
    expect(await closestExistingPath(root, "/config.yml")).toBe("/config.yaml");
  });

  test("closestExistingPath() falls back to the same base name elsewhere in the tree", async () => {
    expect(await closestExistingPath(root, "/run.sh")).toBe("/cmd/tool/run.sh");
  });

  test("closestExistingPath() suggests nothing when nothing is close", async () => {
    expect(await closestExistingPath(root, "/package.json")).toBeUndefined();
  });

  test("existsInRoot() resolves paths inside the root", async () => {
    expect(await existsInRoot(root, "/src/main.go")).toBe(true);
    expect(await existsInRoot(root, "/../../src/main.go")).toBe(true);
    expect(await existsInRoot(root, "/nope")).toBe(false);
  });
});
