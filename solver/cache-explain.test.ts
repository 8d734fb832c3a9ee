import { describe, expect, it } from "vitest";
import { sha256, type ExecOp, type FileOp, type Op } from "./llb/index.js";
import { explainStep, formatReason, summarizeOp, type CacheMissReason, type InputNow, type StepRecord } from "./cache-explain.js";
import type { CacheKeyDep } from "./cache-key.js";
import type { CacheMapExplain } from "./op.js";

const BASE = sha256("base");

function exec(args: readonly string[], env: readonly string[] = []): ExecOp {
  return {
    kind: "exec",
    inputs: [{ digest: BASE, output: 0 }],
    meta: { args, env, cwd: "/", user: "" },
    mounts: [{ type: "bind", target: "/", input: 0, selector: "", readonly: false, output: 0 }],
    network: "default",
    security: "sandbox",
  };
}

function step(op: Op, command: string, options: { deps?: readonly CacheKeyDep[]; buildArgs?: readonly string[]; explain?: CacheMapExplain; digest?: string } = {}): StepRecord {
  const keyInputs = { digest: sha256(options.digest ?? JSON.stringify(op)), deps: options.deps ?? [{ kind: "key" as const, key: BASE, output: 0 }] };
  return {
    identity: "step\0Dockerfile\0stage\x002",
    name: `[2/3] ${command}`,
    command,
    key: sha256(JSON.stringify(keyInputs)),
    keyInputs,
    op: summarizeOp(op),
    inputs: [{ identity: "base", name: "[1/3] FROM busybox" }],
    buildArgs: options.buildArgs ?? [],
    ...(options.explain === undefined ? {} : { explain: options.explain }),
    time: 0,
  };
}

const INPUTS: readonly InputNow[] = [{ identity: "base", name: "[1/3] FROM busybox" }];

describe("explainStep()", () => {
  it("names a changed RUN command once, as its instruction text", () => {
    const before = step(exec(["/bin/sh", "-c", "echo one"]), "RUN echo one");
    const after = step(exec(["/bin/sh", "-c", "echo two"]), "RUN echo two");
    expect(explainStep(before, after, INPUTS)).toEqual([{ kind: "command-changed", before: "RUN echo one", after: "RUN echo two" }]);
  });

  it("names a changed build arg with its old and new value, and an ENV value as env", () => {
    const before = step(exec(["/bin/sh", "-c", "echo $V"], ["V=1", "PATH=/bin", "E=a"]), "RUN echo $V", { buildArgs: ["V"] });
    const after = step(exec(["/bin/sh", "-c", "echo $V"], ["V=2", "PATH=/bin", "E=b"]), "RUN echo $V", { buildArgs: ["V"] });
    expect(explainStep(before, after, INPUTS)).toEqual([
      { kind: "env-changed", name: "E", before: "a", after: "b" },
      { kind: "arg-changed", name: "V", before: "1", after: "2" },
    ]);
  });

  it("says an input changed by the name of the step behind it", () => {
    const op = exec(["true"]);
    const before = step(op, "RUN true");
    const after = step(op, "RUN true", { deps: [{ kind: "key", key: sha256("other base"), output: 0 }] });
    expect(explainStep(before, after, INPUTS)).toEqual([{ kind: "input-changed", input: "[1/3] FROM busybox" }]);
  });

  it("lists the paths of a context whose entries differ, added and removed ones included", () => {
    const source: Op = { kind: "source", identifier: "local://context", attrs: {} };
    const before = step(source, "[internal] load build context", { digest: "a", explain: { pathCount: 3, paths: { "a.c": "file 644 1", "b.c": "file 644 2", "gone.c": "file 644 3" } } });
    const after = step(source, "[internal] load build context", { digest: "b", explain: { pathCount: 3, paths: { "a.c": "file 644 1", "b.c": "file 755 2", "new.c": "file 644 4" } } });
    expect(explainStep(before, after, [])).toEqual([{ kind: "file-changed", paths: ["b.c", "gone.c", "new.c"], count: 3 }]);
  });

  it("says files changed without listing them when a context was too large to list", () => {
    const source: Op = { kind: "source", identifier: "local://context", attrs: {} };
    const before = step(source, "[internal] load build context", { digest: "a", explain: { pathCount: 20_000 } });
    const after = step(source, "[internal] load build context", { digest: "b", explain: { pathCount: 20_000 } });
    const reasons = explainStep(before, after, []);
    expect(reasons).toEqual([{ kind: "file-changed", paths: [] }]);
    expect(reasons.map(formatReason)).toEqual(["files changed (too many to list)"]);
  });

  it("narrows a checksum input's changed files to those the step selects", () => {
    const copy: FileOp = { kind: "file", inputs: [{ digest: BASE, output: 0 }, { digest: sha256("ctx"), output: 0 }], base: 0, actions: [] };
    const deps = (checksum: string): CacheKeyDep[] => [{ kind: "key", key: BASE, output: 0 }, { kind: "checksum", checksum: sha256(checksum) }];
    const before = step(copy, "COPY src /app", { deps: deps("one") });
    const after = step(copy, "COPY src /app", { deps: deps("two") });
    const inputs: InputNow[] = [
      INPUTS[0] as InputNow,
      { identity: "ctx", name: "[internal] load build context", reasons: [{ kind: "file-changed", paths: ["README", "src/main.c"] }], selects: (p) => p.startsWith("src/") },
    ];
    expect(explainStep(before, after, inputs)).toEqual([{ kind: "file-changed", paths: ["src/main.c"] }]);
  });

  it("says the base image changed with the digests it resolved to", () => {
    const source = (digest: string): Op => ({ kind: "source", identifier: `docker-image://docker.io/library/busybox:latest@${digest}`, attrs: {} });
    const a = `sha256:${"a".repeat(64)}`;
    const b = `sha256:${"b".repeat(64)}`;
    const before = step(source(a), "FROM busybox", { explain: { resolved: `docker.io/library/busybox:latest@${a}` } });
    const after = step(source(b), "FROM busybox", { explain: { resolved: `docker.io/library/busybox:latest@${b}` } });
    expect(explainStep(before, after, [])).toEqual([{ kind: "base-image-changed", before: `docker.io/library/busybox:latest@${a}`, after: `docker.io/library/busybox:latest@${b}` }]);
  });

  it("says the result is missing when nothing of the key changed", () => {
    const record = step(exec(["true"]), "RUN true");
    expect(explainStep(record, record, INPUTS)).toEqual([{ kind: "result-missing" }]);
  });
});

describe("formatReason()", () => {
  it("renders every kind as one line, quoting values", () => {
    const reasons: CacheMissReason[] = [
      { kind: "no-cache" },
      { kind: "first-build" },
      { kind: "arg-changed", name: "V", before: "1" },
      { kind: "file-changed", paths: ["src/main.c"] },
      { kind: "input-changed", input: "[2/3] COPY . /app" },
    ];
    expect(reasons.map(formatReason)).toEqual([
      "the cache was not used (--no-cache)",
      "no earlier build of this step",
      'build arg V changed: "1" -> (unset)',
      "file changed: src/main.c",
      "its input changed: [2/3] COPY . /app",
    ]);
  });
});
