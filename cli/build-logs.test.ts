import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { sha256 } from "../solver/llb/index.js";
import { BuildLogWriter, findBuildLog, findStep, newBuildId, pruneBuildLogs } from "./build-logs.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-logs-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("BuildLogWriter", () => {
  test("keeps every line a step printed, however many, and finds it by number or name", async () => {
    const writer = new BuildLogWriter(dir, newBuildId());
    const run = sha256("run");
    writer.push({ type: "vertex.started", digest: run, name: "[2/2] RUN make", time: 1 });
    const lines = Array.from({ length: 20_000 }, (_, i) => `output line ${i}\n`);
    for (const line of lines) writer.push({ type: "vertex.log", digest: run, stream: "stdout", data: line, time: 2 });
    writer.push({ type: "vertex.failed", digest: run, name: "[2/2] RUN make", started: 1, time: 3, error: "exit code: 2" });
    await writer.finish(new Error("failed"));
    const build = await findBuildLog(dir, undefined);
    expect(build).toMatchObject({ id: writer.id, state: "failed", error: "failed" });
    const step = findStep(build, "#1");
    expect(findStep(build, "RUN make")).toEqual(step);
    expect(step.state).toBe("failed");
    expect(await readFile(join(dir, build.id, step.log!), "utf8")).toBe(lines.join(""));
  });

  test("an unknown build or step is an error that says what is kept", async () => {
    const writer = new BuildLogWriter(dir, newBuildId());
    await writer.finish(undefined);
    await expect(findBuildLog(dir, "nope")).rejects.toThrow(/no recorded build/);
    expect(() => findStep({ id: "x", started: 0, state: "done", steps: [] }, "3")).toThrow(/no step matches/);
  });

  test("pruning keeps the newest builds", async () => {
    for (let i = 0; i < 5; i++) await new BuildLogWriter(dir, `2020010${i}T000000Z-aaaaaa`).finish(undefined);
    await pruneBuildLogs(dir, 2);
    expect((await readdir(dir)).sort()).toEqual(["20200103T000000Z-aaaaaa", "20200104T000000Z-aaaaaa"]);
  });
});
