import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CopyAction } from "../../solver/llb/index.js";
import { ContentIndex, ContentIndexWriter, hashFile, selectEntries } from "../checksum/index.js";
import { copySourceChecksum } from "./copy-checksum.js";

let dir: string;
let tree: string;
const signal = new AbortController().signal;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-copy-checksum-"));
  tree = join(dir, "tree");
  mkdirSync(join(tree, "src/lib"), { recursive: true });
  mkdirSync(join(tree, "docs"));
  writeFileSync(join(tree, "src/main.ts"), "main");
  writeFileSync(join(tree, "src/lib/a.ts"), "a");
  writeFileSync(join(tree, "src/tool.sh"), "#!/bin/sh\n");
  chmodSync(join(tree, "src/tool.sh"), 0o755);
  writeFileSync(join(tree, "docs/guide.md"), "guide");
  writeFileSync(join(tree, "README.md"), "readme");
  symlinkSync("src/main.ts", join(tree, "entry"));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function copy(src: string, extra: Partial<CopyAction> = {}): CopyAction {
  return {
    kind: "copy", source: 1, src, dest: "/out/", owner: null, mode: null, followSymlinks: false, dirContentsOnly: true,
    createDestPath: true, allowWildcard: true, allowEmptyWildcard: false, include: [], exclude: [], attemptUnpack: false,
    alwaysReplaceExisting: false, ...extra,
  };
}

/** The index the maker of a snapshot would write: every regular file's true hash. */
async function indexOf(root: string, poison: Record<string, string> = {}): Promise<ContentIndex> {
  const writer = new ContentIndexWriter();
  for (const { path, stat } of await selectEntries(root, {})) {
    if (stat.isFile()) writer.add(path, stat, poison[path] ?? (await hashFile(join(root, path))));
  }
  const file = join(dir, `index-${Math.random().toString(16).slice(2)}.txt`);
  await writer.save(file);
  return ContentIndex.open(file);
}

const selections: [string, CopyAction[]][] = [
  ["the whole tree", [copy(".")]],
  ["an include selection", [copy(".", { include: ["src/lib", "*.md"] })]],
  ["an exclude selection with an exception", [copy(".", { exclude: ["src", "!src/tool.sh"] })]],
  ["a subdirectory", [copy("src")]],
  ["a single file and a symlink", [copy("src/tool.sh"), copy("entry")]],
  ["a wildcard", [copy("src/*.ts")]],
];

describe("copySourceChecksum() with a content index", () => {
  it.each(selections)("equals the checksum computed by reading the files for %s", async (_name, actions) => {
    const read = await copySourceChecksum(tree, actions, signal);
    expect(await copySourceChecksum(tree, actions, signal, await indexOf(tree))).toBe(read);
  });

  it("takes content hashes from the index instead of reading the files", async () => {
    // A poisoned hash under a true stat key shows up in the checksum: the file was not read.
    const poisoned = await indexOf(tree, { "src/main.ts": "0".repeat(64) });
    for (const actions of [[copy(".")], [copy("src")], [copy("src/main.ts")]]) {
      expect(await copySourceChecksum(tree, actions, signal, poisoned)).not.toBe(await copySourceChecksum(tree, actions, signal));
    }
  });

  it("still covers modes, owners and link targets, which the index does not hold", async () => {
    const index = await indexOf(tree);
    const before = await copySourceChecksum(tree, [copy(".")], signal, index);
    chmodSync(join(tree, "src/main.ts"), 0o600);
    const afterMode = await copySourceChecksum(tree, [copy(".")], signal, index);
    expect(afterMode).not.toBe(before);
    rmSync(join(tree, "entry"));
    symlinkSync("README.md", join(tree, "entry"));
    expect(await copySourceChecksum(tree, [copy(".")], signal, index)).not.toBe(afterMode);
  });

  it("reads a file whose index entry is stale", async () => {
    const stale = await indexOf(tree, { "src/main.ts": "0".repeat(64) });
    // Another inode, size and mtime: the entry no longer describes the file.
    rmSync(join(tree, "src/main.ts"));
    writeFileSync(join(tree, "src/main.ts"), "main, rewritten");
    utimesSync(join(tree, "src/main.ts"), 1, 1);
    expect(lstatSync(join(tree, "src/main.ts")).size).toBeGreaterThan(4);
    for (const actions of [[copy(".")], [copy("src/main.ts")]]) {
      expect(await copySourceChecksum(tree, actions, signal, stale)).toBe(await copySourceChecksum(tree, actions, signal));
    }
  });

  it("reads every file when the index is missing or of another format", async () => {
    writeFileSync(join(dir, "foreign.txt"), `something else\n1:4:1 ${"0".repeat(64)} src/main.ts\n`);
    for (const index of [await ContentIndex.open(join(dir, "absent.txt")), await ContentIndex.open(join(dir, "foreign.txt"))]) {
      expect(index.size).toBe(0);
      expect(await copySourceChecksum(tree, [copy(".")], signal, index)).toBe(await copySourceChecksum(tree, [copy(".")], signal));
    }
  });
});
