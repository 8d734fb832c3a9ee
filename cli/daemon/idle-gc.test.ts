import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { IdleGc } from "./idle-gc.js";

/** An object only a WeakRef holds, made in a job of its own so the WeakRef does not pin it. */
async function unreachable(): Promise<WeakRef<object>> {
  const ref = new WeakRef({ payload: new Array(100_000).fill(7) });
  await sleep(0);
  return ref;
}

describe("IdleGc", () => {
  test("collects garbage once the delay after schedule() has passed", async () => {
    const gc = new IdleGc(10);
    const ref = await unreachable();
    gc.schedule();
    await sleep(200);
    expect(ref.deref()).toBeUndefined();
  });
});
