import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { listContext, syncKey } from "./context-listing.js";
import { validateListing } from "./context-sync.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-listing-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("listContext()", () => {
  test("lists only what .dockerignore lets through, parents first, with the Dockerfile beside the context", async () => {
    await mkdir(join(dir, "node_modules/x"), { recursive: true });
    await mkdir(join(dir, "docs"), { recursive: true });
    await writeFile(join(dir, "Dockerfile"), "FROM scratch\n");
    await writeFile(join(dir, ".dockerignore"), ".dockerignore\nnode_modules\n*.env\n!keep.env\ndocs\n!docs/README.md\n");
    await writeFile(join(dir, "node_modules/x/index.js"), "big");
    await writeFile(join(dir, "secret.env"), "KEY=1");
    await writeFile(join(dir, "keep.env"), "KEY=2");
    await writeFile(join(dir, "docs/README.md"), "read me");
    await writeFile(join(dir, "docs/other.md"), "not me");
    await symlink("keep.env", join(dir, "link"));
    const listing = await listContext(dir, join(dir, "Dockerfile"));
    expect(listing.entries.map((e) => `${e.kind} ${e.path}${e.target === undefined ? "" : ` -> ${e.target}`}`)).toEqual([
      "dir context",
      // Excluded by itself, and still sent: the daemon's frontend reads it, as the docker CLI always sends it.
      "file context/.dockerignore",
      "file context/Dockerfile",
      // Excluded, listed as the parent of an exception.
      "dir context/docs",
      "file context/docs/README.md",
      "file context/keep.env",
      "symlink context/link -> keep.env",
      "dir dockerfile",
      "file dockerfile/Dockerfile",
    ]);
    expect(listing.entries.find((e) => e.path === "context/keep.env")).toMatchObject({ size: 5, mode: 0o644 });
    expect(listing.files.get("dockerfile/Dockerfile")).toBe(join(dir, "Dockerfile"));
    expect(() => validateListing(listing.entries)).not.toThrow();
  });

  test("<Dockerfile>.dockerignore wins over the context's and travels beside the Dockerfile", async () => {
    await mkdir(join(dir, "build"));
    await writeFile(join(dir, "build/app.Dockerfile"), "FROM scratch\n");
    await writeFile(join(dir, "build/app.Dockerfile.dockerignore"), "*.log\n");
    await writeFile(join(dir, ".dockerignore"), "*.txt\n");
    await writeFile(join(dir, "a.log"), "");
    await writeFile(join(dir, "a.txt"), "");
    const paths = (await listContext(dir, join(dir, "build/app.Dockerfile"))).entries.map((e) => e.path);
    expect(paths).toContain("context/a.txt");
    expect(paths).not.toContain("context/a.log");
    expect(paths.slice(-3)).toEqual(["dockerfile", "dockerfile/app.Dockerfile", "dockerfile/app.Dockerfile.dockerignore"]);
  });
});

describe("syncKey()", () => {
  test("is the same for a rebuild and differs by user, context and Dockerfile directory", () => {
    const key = syncKey("/src/app", "/src/app/Dockerfile", 1000);
    expect(syncKey("/src/app/", "/src/app/Dockerfile", 1000)).toBe(key);
    expect(syncKey("/src/app", "/src/app/other.Dockerfile", 1000)).toBe(key);
    expect(syncKey("/src/app", "/src/app/Dockerfile", 1001)).not.toBe(key);
    expect(syncKey("/src/app2", "/src/app2/Dockerfile", 1000)).not.toBe(key);
    expect(syncKey("/src/app", "/src/app/build/Dockerfile", 1000)).not.toBe(key);
  });
});
