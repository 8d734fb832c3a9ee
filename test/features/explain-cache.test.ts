import { copyFile, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { CacheMissReason } from "../../solver/cache-explain.js";
import { createScratch, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";

/**
 * `kiln build --explain-cache`: each step that runs says why its cache key changed. One state
 * root and one context through a sequence of builds, each changing one thing.
 */
describe("kiln build --explain-cache", () => {
  let scratch: Scratch;
  let context: string;
  let rootfs: string;
  const IMAGE = "kiln-test/explain:1";

  const dockerfile = (run: string): string => [`FROM ${IMAGE}`, "ARG GREETING=hi", "COPY src/ /app/", run, ""].join("\n");
  const RUN = "RUN cat /app/main.c > /out && echo $GREETING >> /out";

  /** Builds with --explain-cache (rawjson) and returns the reasons by step name. */
  async function explain(extra: readonly string[] = []): Promise<Record<string, readonly CacheMissReason[]>> {
    const run = await runKiln(scratch.root, ["build", "--progress", "rawjson", "--explain-cache", ...extra, context]);
    expect(run.code, run.stderr).toBe(0);
    const out: Record<string, readonly CacheMissReason[]> = {};
    for (const event of progressEvents(run.stderr)) if (event.type === "vertex.explain") out[event.name] = event.reasons;
    return out;
  }

  function reasonsOf(all: Record<string, readonly CacheMissReason[]>, fragment: string): readonly CacheMissReason[] | undefined {
    const names = Object.keys(all).filter((name) => name.includes(fragment));
    expect(names.length, `at most one step named like "${fragment}" in ${JSON.stringify(all)}`).toBeLessThanOrEqual(1);
    return names[0] === undefined ? undefined : all[names[0]];
  }

  async function importBase(extra: string | undefined): Promise<void> {
    if (extra !== undefined) await writeFile(join(rootfs, "etc", "release"), extra);
    const imported = await runKiln(scratch.root, ["import", rootfs, IMAGE]);
    expect(imported.code, imported.stderr).toBe(0);
  }

  beforeAll(async () => {
    scratch = await createScratch();
    rootfs = join(scratch.dir, "rootfs");
    await mkdir(join(rootfs, "bin"), { recursive: true });
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await copyFile("/bin/busybox", join(rootfs, "bin", "busybox"));
    for (const tool of ["sh", "cat", "echo"]) await symlink("busybox", join(rootfs, "bin", tool));
    await importBase("one\n");
    context = await scratch.context("app", {
      Dockerfile: dockerfile(RUN),
      "src/main.c": "int main() { return 0; }\n",
      "src/util.c": "int util;\n",
      "README.md": "readme\n",
    });
    // An ordinary build first: what it ran is remembered without the flag.
    const first = await runKiln(scratch.root, ["build", "--progress", "rawjson", context]);
    expect(first.code, first.stderr).toBe(0);
    expect(progressEvents(first.stderr).some((e) => e.type === "vertex.explain")).toBe(false);
  }, 300_000);

  afterAll(async () => {
    await scratch.dispose();
  });

  test("a changed context file: the COPY names it, the following RUN says its input changed", async () => {
    await writeFile(join(context, "src", "main.c"), "int main() { return 1; }\n");
    await writeFile(join(context, "README.md"), "readme, changed\n");
    const reasons = await explain();
    expect(reasonsOf(reasons, "COPY src/")).toEqual([{ kind: "file-changed", paths: ["src/main.c"] }]);
    expect(reasonsOf(reasons, "RUN cat")).toEqual([{ kind: "input-changed", input: expect.stringContaining("COPY src/ /app/") }]);
    expect(reasonsOf(reasons, "load build context")).toEqual([{ kind: "file-changed", paths: ["README.md", "src/main.c"], count: 2 }]);
    expect(reasonsOf(reasons, "FROM")).toBeUndefined();
  }, 300_000);

  test("a changed build arg: the RUN names it with its old and new value", async () => {
    const reasons = await explain(["--build-arg", "GREETING=hello"]);
    expect(reasonsOf(reasons, "RUN cat")).toEqual([{ kind: "arg-changed", name: "GREETING", before: "hi", after: "hello" }]);
    expect(reasonsOf(reasons, "COPY")).toBeUndefined();
  }, 300_000);

  test("changed instruction text: command changed, shown as a plain progress line", async () => {
    await writeFile(join(context, "Dockerfile"), dockerfile(`${RUN} && echo more >> /out`));
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", "--explain-cache", "--build-arg", "GREETING=hello", context]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^#\d+ explain: \[\d\/\d\] RUN cat .*: command changed: "RUN cat \/app\/main.c > \/out && echo \$GREETING >> \/out" -> ".* && echo more >> \/out"$/m);
  }, 300_000);

  test("a re-imported base image with another digest: base image changed, old and new digest", async () => {
    await importBase("two\n");
    const reasons = await explain(["--build-arg", "GREETING=hello"]);
    const from = reasonsOf(reasons, "FROM");
    expect(from).toHaveLength(1);
    const reason = from?.[0];
    expect(reason?.kind).toBe("base-image-changed");
    if (reason?.kind !== "base-image-changed") return;
    const digests = [reason.before, reason.after].map((ref) => /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1]);
    expect(digests[0]).toMatch(/^sha256:/);
    expect(digests[1]).toMatch(/^sha256:/);
    expect(digests[0]).not.toBe(digests[1]);
    expect(reasonsOf(reasons, "COPY src/")).toEqual([{ kind: "input-changed", input: expect.stringContaining("FROM") }]);
  }, 300_000);

  test("--no-cache: every step says so", async () => {
    const reasons = await explain(["--no-cache", "--build-arg", "GREETING=hello"]);
    const steps = Object.entries(reasons).filter(([name]) => !name.startsWith("export") && !name.startsWith("naming"));
    expect(steps.length).toBeGreaterThanOrEqual(3);
    for (const [, r] of steps) expect(r).toEqual([{ kind: "no-cache" }]);
  }, 300_000);
});
