import { describe, expect, it } from "vitest";
import { sha256 } from "./llb/index.js";
import { InFlightRuns, type RunWaiter, type SharedRunContext } from "./in-flight.js";

function waiter(signal: AbortSignal, events: string[], name: string): RunWaiter {
  return {
    signal,
    progress: { log: (_stream, data) => events.push(`${name} log ${data}`), bytes: () => undefined },
    onStarted: () => events.push(`${name} started`),
    onCompleted: () => events.push(`${name} completed`),
  };
}

/** A work function that waits for `release` or for its signal. */
function blockingWork() {
  let release!: (value: string) => void;
  let calls = 0;
  let context: SharedRunContext | undefined;
  const work = (ctx: SharedRunContext) => {
    calls++;
    context = ctx;
    ctx.started();
    ctx.progress.log("stdout", "hi");
    return new Promise<string>((resolve, reject) => {
      release = (value) => {
        ctx.completed();
        resolve(value);
      };
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
    });
  };
  return { work, release: (value: string) => release(value), calls: () => calls, context: () => context };
}

describe("InFlightRuns", () => {
  it("runs a key once for every waiter and reports to each", async () => {
    const runs = new InFlightRuns<string>();
    const events: string[] = [];
    const job = blockingWork();
    const a = runs.run(sha256("k"), waiter(new AbortController().signal, events, "a"), job.work);
    await Promise.resolve();
    const b = runs.run(sha256("k"), waiter(new AbortController().signal, events, "b"), job.work);
    await new Promise((resolve) => setImmediate(resolve));
    job.release("done");
    expect(await Promise.all([a, b])).toEqual(["done", "done"]);
    expect(job.calls()).toBe(1);
    expect(events).toEqual(["a started", "a log hi", "b started", "a completed", "b completed"]);
  });

  it("keeps the run going while one waiter remains and cancels it when the last one leaves", async () => {
    const runs = new InFlightRuns<string>();
    const job = blockingWork();
    const [first, second] = [new AbortController(), new AbortController()];
    const a = runs.run(sha256("k"), waiter(first.signal, [], "a"), job.work);
    const b = runs.run(sha256("k"), waiter(second.signal, [], "b"), job.work);
    await new Promise((resolve) => setImmediate(resolve));
    first.abort(new Error("a cancelled"));
    await expect(a).rejects.toThrow("a cancelled");
    expect(job.context()?.signal.aborted).toBe(false);
    second.abort(new Error("b cancelled"));
    await expect(b).rejects.toThrow("b cancelled");
    expect(job.context()?.signal.aborted).toBe(true);
  });

  it("starts a fresh run for a key whose earlier run has settled", async () => {
    const runs = new InFlightRuns<string>();
    let calls = 0;
    const work = async (ctx: SharedRunContext) => {
      ctx.started();
      return `run ${++calls}`;
    };
    expect(await runs.run(sha256("k"), waiter(new AbortController().signal, [], "a"), work)).toBe("run 1");
    expect(await runs.run(sha256("k"), waiter(new AbortController().signal, [], "b"), work)).toBe("run 2");
  });
});
