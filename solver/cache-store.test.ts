import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sha256, type Digest } from "./llb/index.js";
import { openCacheStore, type CacheRecord } from "./cache-store.js";
import { createSolver } from "./scheduler.js";
import { constant, definitionOf, EventLog, FakeOps, sum } from "./testing/fake-ops.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-cache-store-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const keyOf = (name: string): Digest => sha256(name);
const recordOf = (id: string, time = 1_000): CacheRecord => ({ results: [{ id }], created: time, lastUsed: time, vertexName: `make ${id}` });
const recordPath = (key: Digest): string => join(dir, "store", "records", key.slice(7, 9), `${key.slice(7)}.json`);

describe("openCacheStore()", () => {
  it("round-trips a record, with its key inputs", async () => {
    const store = await openCacheStore(join(dir, "store"));
    const record: CacheRecord = {
      ...recordOf("snap-1"),
      keyInputs: { digest: keyOf("op"), deps: [{ kind: "key", key: keyOf("input"), output: 0 }] },
    };
    await store.record(keyOf("a"), record);
    expect(await store.load(keyOf("a"))).toEqual(record);
    const reopened = await openCacheStore(join(dir, "store"));
    expect(await reopened.load(keyOf("a"))).toEqual(record);
    expect(await reopened.load(keyOf("b"))).toBeUndefined();
  });

  it("replaces a record atomically and leaves no temp files", async () => {
    const store = await openCacheStore(join(dir, "store"));
    await store.record(keyOf("a"), recordOf("old"));
    await store.record(keyOf("a"), recordOf("new"));
    expect((await store.load(keyOf("a")))?.results).toEqual([{ id: "new" }]);
    expect(await readdir(join(dir, "store", "tmp"))).toEqual([]);
  });

  it("treats a corrupt or misplaced record as a miss and replaces it on the next write", async () => {
    const store = await openCacheStore(join(dir, "store"));
    await store.record(keyOf("a"), recordOf("x"));
    await writeFile(recordPath(keyOf("a")), '{"format":"kiln-cache-v1","key":"sha');
    expect(await store.load(keyOf("a"))).toBeUndefined();
    await store.record(keyOf("a"), recordOf("y"));
    expect((await store.load(keyOf("a")))?.results).toEqual([{ id: "y" }]);

    // A valid record file under the wrong name is not believed either.
    await store.record(keyOf("b"), recordOf("b"));
    await mkdir(dirname(recordPath(keyOf("c"))), { recursive: true });
    await writeFile(recordPath(keyOf("c")), await readFile(recordPath(keyOf("b"))));
    expect(await store.load(keyOf("c"))).toBeUndefined();
  });

  it("keeps the last use from touch() and forgets deleted records", async () => {
    const store = await openCacheStore(join(dir, "store"));
    await store.record(keyOf("a"), recordOf("a", 1_000));
    await store.touch(keyOf("a"), 1_700_000_000_000);
    expect((await store.load(keyOf("a")))?.lastUsed).toBe(1_700_000_000_000);
    await store.touch(keyOf("missing"));
    expect(await store.delete(keyOf("a"))).toBe(true);
    expect(await store.delete(keyOf("a"))).toBe(false);
    expect(await store.load(keyOf("a"))).toBeUndefined();
  });

  it("lists every readable record with its size and skips broken ones", async () => {
    const store = await openCacheStore(join(dir, "store"));
    for (const name of ["a", "b", "c"]) await store.record(keyOf(name), recordOf(name));
    await writeFile(recordPath(keyOf("b")), "garbage");
    const listed = [];
    for await (const entry of store.list()) listed.push(entry);
    expect(listed.map((e) => e.record.results[0]?.id).sort()).toEqual(["a", "c"]);
    expect(listed.every((e) => e.size > 0 && e.key === keyOf(e.record.results[0]!.id))).toBe(true);
  });

  it("refuses a directory written in another format", async () => {
    await mkdir(join(dir, "store"), { recursive: true });
    await writeFile(join(dir, "store", "format"), "kiln-cache-v9\n");
    await expect(openCacheStore(join(dir, "store"))).rejects.toMatchObject({ code: "KILN_CACHE_FORMAT" });
  });

  it("removes temp files of writers that are gone and keeps those of live ones", async () => {
    await openCacheStore(join(dir, "store"));
    const dead = join(dir, "store", "tmp", `${"a".repeat(64)}.999999999.abc`);
    const live = join(dir, "store", "tmp", `${"b".repeat(64)}.${process.pid}.abc`);
    await writeFile(dead, "{");
    await writeFile(live, "{");
    await openCacheStore(join(dir, "store"));
    expect(await readdir(join(dir, "store", "tmp"))).toEqual([`${"b".repeat(64)}.${process.pid}.abc`]);
  });

  it("serves a solver: the second identical solve runs nothing", async () => {
    const solver = createSolver({ cacheStore: await openCacheStore(join(dir, "store")), concurrency: 2 });
    const definition = definitionOf(sum("copy", [sum("left", [constant(1)]), constant(2)], { checksum: true }));
    const first = await solver.solve(definition, { resolveOp: new FakeOps().resolveOp });
    const again = createSolver({ cacheStore: await openCacheStore(join(dir, "store")) });
    const ops = new FakeOps();
    const log = new EventLog();
    const second = await again.solve(definition, { resolveOp: ops.resolveOp, onEvent: log.sink });
    expect(second.ref).toEqual(first.ref);
    expect(second.cacheKey).toBe(first.cacheKey);
    expect(ops.totalRuns()).toBe(0);
    expect(log.ofType("vertex.cached").sort()).toEqual(["const 1", "const 2", "copy", "left"]);
  });

  it("stores and finds 100,000 records", async () => {
    const store = await openCacheStore(join(dir, "store"));
    const count = 100_000;
    const parallel = 64;
    for (let start = 0; start < count; start += parallel) {
      const batch = [];
      for (let i = start; i < Math.min(count, start + parallel); i++) batch.push(store.record(keyOf(`k${i}`), recordOf(`r${i}`)));
      await Promise.all(batch);
    }
    for (let start = 0; start < count; start += parallel) {
      const batch = [];
      for (let i = start; i < Math.min(count, start + parallel); i++) batch.push(store.load(keyOf(`k${i}`)));
      const loaded = await Promise.all(batch);
      loaded.forEach((record, offset) => expect(record?.results[0]?.id).toBe(`r${start + offset}`));
    }
    expect(await store.load(keyOf("absent"))).toBeUndefined();
  }, 600_000);
});

describe("openCacheStore() across processes", () => {
  it("is consistent after a writer is SIGKILLed in the middle of writing records", async () => {
    const script = await writerScript();
    const storeDir = join(dir, "store");
    const child = spawn(process.execPath, [script, storeDir, "w", "1000000"], { stdio: ["ignore", "pipe", "inherit"] });
    let written = -1;
    let buffered = "";
    await new Promise<void>((resolvePromise) => {
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) written = Number(line);
        if (written >= 150 && !child.killed) {
          child.kill("SIGKILL");
          resolvePromise();
        }
      });
    });
    await new Promise((resolvePromise) => child.on("exit", resolvePromise));

    const store = await openCacheStore(storeDir);
    expect(await readdir(join(storeDir, "tmp"))).toEqual([]);
    // Everything reported written is there, whole; the record in flight is whole or absent.
    for (let i = 0; i <= written; i++) expect((await store.load(writerKey("w", i)))?.results[0]?.id).toBe(`w-${i}`);
    let listed = 0;
    for await (const entry of store.list()) {
      expect(entry.record.results[0]?.id).toMatch(/^w-\d+$/);
      listed++;
    }
    expect(await countFiles(join(storeDir, "records"))).toBe(listed);
    expect(listed).toBeGreaterThanOrEqual(written + 1);
    // The store still takes writes.
    await store.record(writerKey("w", written + 1), recordOf("after"));
    expect((await store.load(writerKey("w", written + 1)))?.results[0]?.id).toBe("after");
  });

  it("stays consistent when two processes write the same keys at once", async () => {
    const script = await writerScript();
    const storeDir = join(dir, "store");
    const run = (id: string) =>
      new Promise<number | null>((resolvePromise) => {
        const child = spawn(process.execPath, [script, storeDir, "k", "300", id], { stdio: ["ignore", "ignore", "inherit"] });
        child.on("exit", resolvePromise);
      });
    expect(await Promise.all([run("one"), run("two")])).toEqual([0, 0]);
    const store = await openCacheStore(storeDir);
    for (let i = 0; i < 300; i++) {
      expect((await store.load(writerKey("k", i)))?.results[0]?.id).toMatch(new RegExp(`^(one|two)-${i}$`));
    }
    expect(await countFiles(join(storeDir, "records"))).toBe(300);
  });
});

function writerKey(prefix: string, i: number): Digest {
  return sha256(`${prefix}${i}`);
}

async function countFiles(path: string): Promise<number> {
  let count = 0;
  for (const shard of await readdir(path)) count += (await readdir(join(path, shard))).length;
  return count;
}

/**
 * A plain-JS writer using this very cache-store.ts: the module and its relative imports are
 * transpiled (types stripped, nothing else) into the temp dir, so the child writes records exactly
 * the way the store does. Records carry a 256 KiB payload so a kill often lands mid-write.
 */
async function writerScript(): Promise<string> {
  const out = join(dir, "mod");
  const pending = [join(here, "cache-store.ts")];
  const done = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (done.has(file)) continue;
    done.add(file);
    const source = await readFile(file, "utf8");
    for (const match of source.matchAll(/from "(\.{1,2}\/[^"]+)\.js"/g)) pending.push(resolve(dirname(file), `${match[1]}.ts`));
    const js = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText;
    const target = join(out, relative(root, file)).replace(/\.ts$/, ".js");
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, js);
  }
  await writeFile(join(out, "package.json"), '{ "type": "module" }\n');
  const script = join(out, "writer.js");
  await writeFile(
    script,
    `import { createHash } from "node:crypto";
import { openCacheStore } from "./solver/cache-store.js";
const [dir, prefix, count, writer = prefix] = process.argv.slice(2);
const store = await openCacheStore(dir);
const payload = "x".repeat(256 * 1024);
for (let i = 0; i < Number(count); i++) {
  const key = "sha256:" + createHash("sha256").update(prefix + i).digest("hex");
  await store.record(key, { results: [{ id: writer + "-" + i, payload }], created: Date.now(), lastUsed: Date.now() });
  process.stdout.write(i + "\\n");
}
`,
  );
  return script;
}
