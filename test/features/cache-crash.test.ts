import { execFileSync, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, progressEvents, REPO, runKiln, type Scratch } from "../harness/kiln.js";
import type { ProgressEvent } from "../../solver/progress.js";

const registry = inject("registry");

const events = progressEvents;

function statusOf(list: readonly ProgressEvent[], fragment: string): "ran" | "cached" | undefined {
  for (const e of list) {
    if (!("name" in e) || !e.name.includes(fragment)) continue;
    if (e.type === "vertex.cached") return "cached";
    if (e.type === "vertex.started") return "ran";
  }
  return undefined;
}

/**
 * Starts `bin/kiln build` and resolves once a line of its rawjson progress matches `until`; the
 * child keeps running.
 */
function startKilnUntil(root: string, args: readonly string[], until: (event: ProgressEvent) => boolean) {
  const child = spawn(process.execPath, [join(REPO, "bin", "kiln"), "--root", root, ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  const exited = new Promise<number>((resolve) => child.on("close", (code, signal) => resolve(code ?? (signal === null ? -1 : 128))));
  const reached = new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      if (events(stderr).some(until)) resolve();
    });
    void exited.then(() => reject(new Error(`kiln exited before the awaited event:\n${stderr}`)));
  });
  child.stdout.resume();
  return { child, reached, exited, stderr: () => stderr };
}

/** Snapshot records still marked active (a build's writable snapshots) under the state root. */
async function activeSnapshots(root: string): Promise<string[]> {
  const meta = join(root, "snapshots", "overlay", "meta");
  const active: string[] = [];
  for (const name of await readdir(meta).catch(() => [] as string[])) {
    if (!name.endsWith(".json")) continue;
    const info = JSON.parse(await readFile(join(meta, name), "utf8")) as { kind: string };
    if (info.kind === "active") active.push(name);
  }
  return active;
}

function runcContainers(root: string): unknown[] {
  const out = execFileSync("runc", ["--root", join(root, "executor", "runc"), "list", "--format", "json"], { encoding: "utf8" });
  return (JSON.parse(out === "" ? "null" : out) as unknown[] | null) ?? [];
}

describe("the cache survives a killed kiln and concurrent kilns", () => {
  let scratch: Scratch;
  beforeEach(async () => {
    scratch = await createScratch();
  });
  afterEach(async () => {
    await scratch.dispose();
  });

  test("after SIGKILL during a RUN, the next build succeeds, reuses what was committed and leaves nothing behind", async () => {
    const context = await scratch.context("killed", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN echo committed > /committed",
        "ARG SLEEP",
        'RUN echo sleeping && sleep "$SLEEP" && echo done > /done',
        "",
      ].join("\n"),
    });
    const killed = startKilnUntil(scratch.root, ["build", "--progress", "rawjson", "--build-arg", "SLEEP=120", context], (e) => e.type === "vertex.log" && e.data.includes("sleeping"));
    await killed.reached;
    killed.child.kill("SIGKILL");
    await killed.exited;
    // The killed build left its RUN mid-flight: a container, its mounts and a writable snapshot.
    expect(await activeSnapshots(scratch.root)).not.toEqual([]);

    const again = await runKiln(scratch.root, ["build", "--progress", "rawjson", "--build-arg", "SLEEP=0", context]);
    expect(again.code, again.stderr).toBe(0);
    const list = events(again.stderr);
    expect(statusOf(list, "RUN echo committed")).toBe("cached");
    expect(statusOf(list, "RUN echo sleeping")).toBe("ran");
    expect(await mountsUnder(scratch.root)).toEqual([]);
    expect(await activeSnapshots(scratch.root)).toEqual([]);
    expect(runcContainers(scratch.root)).toEqual([]);
  });

  test("two kiln processes building on one state root at once both succeed", async () => {
    const shared = [`FROM ${registry}/busybox:latest`, "RUN echo shared > /shared"];
    const left = await scratch.context("left", { Dockerfile: [...shared, "RUN sleep 2 && echo left > /left", ""].join("\n") });
    const right = await scratch.context("right", { Dockerfile: [...shared, "RUN sleep 1 && echo right > /right", ""].join("\n") });
    // The second starts while the first is running a container: its start-up must leave the
    // first's snapshots, mounts and container alone.
    const first = startKilnUntil(scratch.root, ["build", "--progress", "rawjson", left], (e) => e.type === "vertex.started" && e.name.includes("echo left"));
    await first.reached;
    const second = await runKiln(scratch.root, ["build", "--progress", "rawjson", right]);
    expect(second.code, second.stderr).toBe(0);
    expect(await first.exited, first.stderr()).toBe(0);

    for (const context of [left, right]) {
      const again = await runKiln(scratch.root, ["build", "--progress", "rawjson", context]);
      expect(again.code, again.stderr).toBe(0);
      expect(events(again.stderr).filter((e) => e.type === "vertex.started" && !e.name.startsWith("export"))).toEqual([]);
    }
    expect(await mountsUnder(scratch.root)).toEqual([]);
    expect(await activeSnapshots(scratch.root)).toEqual([]);
  });

  test("two kiln processes building the same Dockerfile at once both succeed", async () => {
    const context = await scratch.context("same", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "COPY a.txt /a", "RUN sleep 1 && cat /a > /b", ""].join("\n"),
      "a.txt": "a\n",
    });
    const [one, two] = await Promise.all([
      runKiln(scratch.root, ["build", "--progress", "rawjson", context]),
      runKiln(scratch.root, ["build", "--progress", "rawjson", context]),
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const again = await runKiln(scratch.root, ["build", "--progress", "rawjson", context]);
    expect(again.code, again.stderr).toBe(0);
    expect(statusOf(events(again.stderr), "RUN sleep 1")).toBe("cached");
  });
});
