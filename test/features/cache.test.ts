import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, test } from "vitest";
import { createScratch, progressEvents, runKiln, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/** What each solved step did in one build, by its progress name: "ran" or "cached". */
type Statuses = Record<string, "ran" | "cached">;

async function build(scratch: Scratch, context: string, extra: readonly string[] = []): Promise<Statuses> {
  const run = await runKiln(scratch.root, ["build", "--progress", "rawjson", ...extra, context]);
  expect(run.code, run.stderr).toBe(0);
  const statuses: Statuses = {};
  for (const event of progressEvents(run.stderr)) {
    if (!("name" in event) || event.name.startsWith("exporting") || event.name.startsWith("naming")) continue;
    if (event.type === "vertex.cached") statuses[event.name] = "cached";
    if (event.type === "vertex.started") statuses[event.name] = "ran";
  }
  return statuses;
}

/** The status of the one step whose name contains `fragment`. */
function status(statuses: Statuses, fragment: string): "ran" | "cached" | undefined {
  const names = Object.keys(statuses).filter((name) => name.includes(fragment));
  expect(names, `one step named like "${fragment}" in ${JSON.stringify(statuses)}`).toHaveLength(1);
  return statuses[names[0] as string];
}

describe("a rebuild re-runs exactly the steps whose inputs changed", () => {
  let scratch: Scratch;
  beforeEach(async () => {
    scratch = await createScratch();
  });
  afterEach(async () => {
    await scratch.dispose();
  });

  test("changing a context file that no COPY selects invalidates nothing", async () => {
    const context = await scratch.context("unselected", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "COPY a.txt /a", "RUN cat /a > /copied", ""].join("\n"),
      "a.txt": "a\n",
      "b.txt": "b\n",
    });
    await build(scratch, context);
    await writeFile(join(context, "b.txt"), "b changed\n");
    const again = await build(scratch, context);
    expect(status(again, "COPY a.txt")).toBe("cached");
    expect(status(again, "RUN cat")).toBe("cached");
  });

  test("changing a context file that .dockerignore excludes invalidates nothing, even under COPY .", async () => {
    const context = await scratch.context("ignored", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "COPY . /src", "RUN ls /src > /listing", ""].join("\n"),
      ".dockerignore": "*.log\n",
      "main.txt": "main\n",
      "debug.log": "one\n",
    });
    await build(scratch, context);
    await writeFile(join(context, "debug.log"), "two\n");
    const again = await build(scratch, context);
    expect(status(again, "COPY . /src")).toBe("cached");
    expect(status(again, "RUN ls")).toBe("cached");
  });

  test("changing one selected file re-runs that COPY and what follows, nothing before it", async () => {
    const context = await scratch.context("selected", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN echo before > /before",
        "COPY a.txt /a",
        "RUN cat /a > /after",
        "",
      ].join("\n"),
      "a.txt": "a\n",
      "b.txt": "b\n",
    });
    await build(scratch, context);
    await writeFile(join(context, "a.txt"), "a changed\n");
    const again = await build(scratch, context);
    expect(status(again, "RUN echo before")).toBe("cached");
    expect(status(again, "COPY a.txt")).toBe("ran");
    expect(status(again, "RUN cat")).toBe("ran");
  });

  test("a build arg that reaches a RUN is part of its key", async () => {
    const context = await scratch.context("arg-used", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "ARG FLAVOUR", 'RUN echo "$FLAVOUR" > /flavour', ""].join("\n"),
    });
    await build(scratch, context, ["--build-arg", "FLAVOUR=vanilla"]);
    const same = await build(scratch, context, ["--build-arg", "FLAVOUR=vanilla"]);
    expect(status(same, "RUN echo")).toBe("cached");
    const changed = await build(scratch, context, ["--build-arg", "FLAVOUR=chocolate"]);
    expect(status(changed, "RUN echo")).toBe("ran");
  });

  test("a build arg that does not reach a RUN is not part of its key", async () => {
    const context = await scratch.context("arg-unused", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS other`,
        "ARG ELSEWHERE",
        'RUN echo "$ELSEWHERE" > /elsewhere',
        `FROM ${registry}/busybox:latest`,
        "RUN echo early > /early",
        "ARG LATE",
        'RUN echo "$LATE" > /late',
        "",
      ].join("\n"),
    });
    const args = (value: string): string[] => ["--build-arg", `ELSEWHERE=${value}`, "--build-arg", `LATE=${value}`, "--build-arg", `UNDECLARED=${value}`];
    await build(scratch, context, args("one"));
    const again = await build(scratch, context, args("two"));
    // ELSEWHERE belongs to a stage the target does not need; UNDECLARED is declared nowhere; LATE
    // is declared after "RUN echo early".
    expect(status(again, "RUN echo early")).toBe("cached");
    expect(status(again, "> /late")).toBe("ran");
    expect(Object.keys(again).some((name) => name.includes("ELSEWHERE"))).toBe(false);
  });

  test("--no-cache re-runs every step", async () => {
    const context = await scratch.context("no-cache", {
      Dockerfile: [`FROM ${registry}/busybox:latest`, "COPY a.txt /a", "RUN cat /a > /copied", ""].join("\n"),
      "a.txt": "a\n",
    });
    await build(scratch, context);
    const again = await build(scratch, context, ["--no-cache"]);
    expect(status(again, "COPY a.txt")).toBe("ran");
    expect(status(again, "RUN cat")).toBe("ran");
    expect(Object.values(again)).not.toContain("cached");
  });

  test("--no-cache-filter STAGE re-runs that stage's steps and keeps the others cached", async () => {
    const context = await scratch.context("no-cache-filter", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS deps`,
        "RUN echo deps > /deps",
        `FROM ${registry}/busybox:latest AS app`,
        "COPY --from=deps /deps /deps",
        "RUN cat /deps > /app",
        "",
      ].join("\n"),
    });
    await build(scratch, context);
    const again = await build(scratch, context, ["--no-cache-filter", "app"]);
    expect(status(again, "RUN echo deps")).toBe("cached");
    expect(status(again, "COPY --from=deps")).toBe("ran");
    expect(status(again, "RUN cat /deps")).toBe("ran");
  });
});
