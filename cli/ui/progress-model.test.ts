import { describe, expect, test } from "vitest";
import { sha256 } from "../../solver/llb/index.js";
import { formatBytes, formatTransfer, ProgressModel, TAIL_LINES } from "./progress-model.js";

const a = sha256("a");
const b = sha256("b");

describe("ProgressModel", () => {
  test("counts running, cached, finished and failed steps", () => {
    const model = new ProgressModel(0);
    model.push({ type: "vertex.started", digest: a, name: "[1/2] RUN a", time: 1 });
    model.push({ type: "vertex.cached", digest: b, name: "[2/2] RUN b", time: 2 });
    expect(model.counts()).toEqual({ total: 2, finished: 1, running: 1, cached: 1, failed: 0 });
    model.push({ type: "vertex.failed", digest: a, name: "[1/2] RUN a", started: 1, time: 5, error: "boom" });
    expect(model.counts()).toEqual({ total: 2, finished: 2, running: 0, cached: 1, failed: 1 });
    expect(model.finishedOrder.map((v) => v.name)).toEqual(["[2/2] RUN b", "[1/2] RUN a"]);
  });

  test("keeps only the last lines of a step's output, joining lines split across chunks", () => {
    const model = new ProgressModel(0);
    model.push({ type: "vertex.started", digest: a, name: "RUN", time: 1 });
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${i}`);
    model.push({ type: "vertex.log", digest: a, stream: "stdout", data: `${lines.join("\n")}\nhalf`, time: 2 });
    model.push({ type: "vertex.log", digest: a, stream: "stdout", data: "-done\n", time: 3 });
    const tail = model.vertices.get(a)!.tail;
    expect(tail).toHaveLength(TAIL_LINES);
    expect(tail.at(-1)).toBe("half-done");
    expect(tail.at(-2)).toBe("line 999");
  });

  test("a carriage return shows only what a progress bar drew last", () => {
    const model = new ProgressModel(0);
    model.push({ type: "vertex.log", digest: a, stream: "stderr", data: "10%\r50%\r100%\n", time: 2 });
    expect(model.vertices.get(a)!.tail).toEqual(["100%"]);
  });

  test("tracks transfers with their rate", () => {
    const model = new ProgressModel(0);
    model.push({ type: "vertex.bytes", digest: a, id: "layer", current: 0, total: 4_000_000, time: 1000 });
    model.push({ type: "vertex.bytes", digest: a, id: "layer", current: 2_000_000, time: 2000 });
    expect(formatTransfer(model.vertices.get(a)!.transfers.get("layer")!)).toBe("2.0MB / 4.0MB 2.0MB/s");
    expect(formatBytes(999)).toBe("999B");
  });

  test("collects --explain-cache reasons for the summary without counting them as steps", () => {
    const model = new ProgressModel(0);
    model.push({ type: "vertex.explain", digest: a, name: "[2/3] COPY . /app", reasons: [{ kind: "file-changed", paths: ["src/main.c"] }], time: 1 });
    model.push({ type: "vertex.explain", digest: b, name: "[3/3] RUN make", reasons: [{ kind: "arg-changed", name: "V", before: "1", after: "2" }, { kind: "input-changed", input: "[2/3] COPY . /app" }], time: 1 });
    expect(model.counts().total).toBe(0);
    expect(model.explanations).toEqual([
      "[2/3] COPY . /app: file changed: src/main.c",
      '[3/3] RUN make: build arg V changed: "1" -> "2"; its input changed: [2/3] COPY . /app',
    ]);
  });
});
