import { lstatSync, mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { opCacheDigest, type ExecOp, type Mount } from "../../solver/llb/index.js";
import { createRuncExecutor } from "../executor/index.js";
import { makeBusyboxRootfs } from "../executor/testing/busybox-rootfs.js";
import { withMountedSnapshot } from "../snapshotter/mount.js";
import { createOverlaySnapshotter } from "../snapshotter/overlay.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { createExecRunner, type ExecRunnerDeps } from "./exec-op.js";
import { committedTree, FAKE_INPUT, testContext, vertexOf } from "./testing.js";

let dir: string;
let snapshotter: Snapshotter;
let deps: ExecRunnerDeps;
let base: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kiln-exec-op-"));
  snapshotter = await createOverlaySnapshotter(join(dir, "snapshots"));
  deps = { snapshotter, executor: createRuncExecutor({ stateDir: join(dir, "executor") }), stateDir: join(dir, "state") };
  base = await committedTree(snapshotter, (d) => {
    makeBusyboxRootfs(d);
  });
});

afterEach(() => {
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  rmSync(dir, { recursive: true, force: true });
});

function run(script: string, extra: { mounts?: Mount[]; user?: string; cwd?: string; env?: string[]; inputs?: number } = {}): ExecOp {
  const inputs = Array.from({ length: extra.inputs ?? 1 }, (_, i) => ({ digest: FAKE_INPUT, output: i }));
  return {
    kind: "exec",
    inputs,
    meta: { args: ["/bin/sh", "-c", script], env: extra.env ?? [], cwd: extra.cwd ?? "/", user: extra.user ?? "" },
    mounts: [{ type: "bind", target: "/", input: 0, selector: "/", readonly: false, output: 0 }, ...(extra.mounts ?? [])],
    network: "host",
    security: "sandbox",
  };
}

async function readInSnapshot(id: string, path: string): Promise<string | undefined> {
  return withMountedSnapshot(await snapshotter.view(id), async (d) => (existsSync(join(d, path)) ? readFileSync(join(d, path), "utf8") : undefined));
}

describe("createExecRunner", () => {
  it("uses the op digest without its inputs, and one plain dep per input, as its cache map", async () => {
    const op = run("true");
    const map = await createExecRunner(deps, vertexOf(op)).cacheMap(testContext());
    expect(map).toEqual({ digest: opCacheDigest(op), deps: [{}] });
  });

  it("adds proxy settings to the process env in both spellings, unless env names them, and keeps them out of the cache map", async () => {
    const op = run("env | grep -i _proxy= | sort > /out", { env: ["NO_PROXY=declared"] });
    const withProxy: ExecOp = { ...op, meta: { ...op.meta, proxyEnv: { httpProxy: "http://proxy:3128", noProxy: "from-arg" } } };
    const other: ExecOp = { ...withProxy, meta: { ...withProxy.meta, proxyEnv: { httpProxy: "http://elsewhere:8080" } } };
    const maps = await Promise.all([op, withProxy, other].map((o) => createExecRunner(deps, vertexOf(o)).cacheMap(testContext())));
    expect(new Set(maps.map((m) => m.digest)).size).toBe(1);
    const [result] = await createExecRunner(deps, vertexOf(withProxy)).run([{ id: base }], testContext());
    expect(await readInSnapshot(result!.id, "out")).toBe("HTTP_PROXY=http://proxy:3128\nNO_PROXY=declared\nhttp_proxy=http://proxy:3128\nno_proxy=from-arg\n");
  });

  it("commits what a RUN writes, as user and cwd, and streams its output", async () => {
    const op = run("echo hello; id -u > /tmp/out; pwd >> /tmp/out; echo $GREETING >> /tmp/out", { user: "nobody", cwd: "/tmp/work", env: ["GREETING=hi"] });
    const context = testContext();
    const [result] = await createExecRunner(deps, vertexOf(op)).run([{ id: base }], context);
    expect(context.logs).toEqual([{ stream: "stdout", data: "hello\n" }]);
    expect(await readInSnapshot(result!.id, "tmp/out")).toBe("65534\n/tmp/work\nhi\n");
    expect(await readInSnapshot(result!.id, "etc/hosts")).toBeUndefined();
  });

  it("leaves a whiteout in the upperdir for a deleted lower file", async () => {
    const [result] = await createExecRunner(deps, vertexOf(run("rm /etc/group"))).run([{ id: base }], testContext());
    const view = await snapshotter.view(result!.id);
    if (view.kind !== "overlay") throw new Error("expected an overlay view of a two-snapshot chain");
    const upper = view.lowerdirs[0]!;
    const st = lstatSync(join(upper, "etc/group"));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expect(await readInSnapshot(result!.id, "etc/group")).toBeUndefined();
    expect(await readInSnapshot(result!.id, "etc/passwd")).toContain("nobody");
  });

  it("fails with ExecError, aborts the snapshot and unmounts everything", async () => {
    const error = await createExecRunner(deps, vertexOf(run("echo partial > /f; echo oops >&2; exit 3"))).run([{ id: base }], testContext()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "KILN_EXEC_FAILED", exitCode: 3, output: ["oops"] });
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  });

  it("kills the process on abort and cleans up", async () => {
    const controller = new AbortController();
    const context = testContext(controller.signal);
    const running = createExecRunner(deps, vertexOf(run("echo up; sleep 100"))).run([{ id: base }], {
      ...context,
      progress: { log: () => controller.abort(new Error("stop")), bytes: () => {} },
    });
    await expect(running).rejects.toThrow("stop");
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  });

  it("runs on scratch when the root input is null", async () => {
    const op: ExecOp = { ...run("true"), inputs: [{ digest: FAKE_INPUT, output: 0 }] };
    const binary: ExecOp = {
      ...op,
      meta: { ...op.meta, args: ["/busybox/busybox", "sh", "-c", "/busybox/busybox mkdir /made"] },
      mounts: [
        { type: "bind", target: "/", input: null, selector: "/", readonly: false, output: 0 },
        { type: "bind", target: "/busybox", input: 0, selector: "/bin", readonly: true, output: null },
      ],
    };
    const [result] = await createExecRunner(deps, vertexOf(binary)).run([{ id: base }], testContext());
    const names = await withMountedSnapshot(await snapshotter.view(result!.id), async (d) => (await import("node:fs/promises")).readdir(d));
    expect(names.sort()).toEqual(["made"]);
  });

  it("makes writable bind mounts outputs, discards non-output writes and keeps cache mounts", async () => {
    const op = run("echo out > /o/f; echo tmp > /t/f; echo c >> /cache/log; cat /cache/log | wc -l", {
      inputs: 1,
      mounts: [
        { type: "bind", target: "/o", input: null, selector: "/", readonly: false, output: 1 },
        { type: "bind", target: "/t", input: 0, selector: "/", readonly: false, output: null },
        { type: "cache", target: "/cache", id: "my-cache", sharing: "shared", input: null, selector: "/", readonly: false },
      ],
    });
    const first = testContext();
    const results = await createExecRunner(deps, vertexOf(op)).run([{ id: base }], first);
    expect(results).toHaveLength(2);
    expect(await readInSnapshot(results[1]!.id, "f")).toBe("out\n");
    expect(await readInSnapshot(results[0]!.id, "t/f")).toBeUndefined();
    expect(await readInSnapshot(base, "f")).toBeUndefined();
    const second = testContext();
    await createExecRunner(deps, vertexOf(op)).run([{ id: base }], second);
    expect(second.logs.map((l) => l.data.trim())).toEqual(["2"]);
  });
});
