import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, REPO, runKiln, type Scratch } from "../harness/kiln.js";
import { startDaemon } from "./daemon-process.js";

const registry = inject("registry");

/** Resolves when `child`'s stderr has printed text matching `pattern`; rejects if it exits first. */
function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let seen = "";
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString("utf8");
      if (pattern.test(seen)) {
        child.stderr?.off("data", onData);
        resolvePromise(seen);
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`exited with ${code} before printing ${pattern}: ${seen}`)));
  });
}

describe("kiln serve and its clients", () => {
  let scratch: Scratch;
  let daemon: ChildProcess;
  let addr: string;
  let daemonLog = "";
  beforeAll(async () => {
    scratch = await createScratch();
    addr = `unix://${join(scratch.dir, "run/kiln.sock")}`;
    daemon = spawn(process.execPath, [join(REPO, "bin/kiln"), "--root", scratch.root, "serve", "--addr", addr], { stdio: ["ignore", "ignore", "pipe"] });
    daemon.stderr!.on("data", (c: Buffer) => (daemonLog += c.toString("utf8")));
    await waitForOutput(daemon, /listening on/);
  });
  afterAll(async () => {
    if (daemon.exitCode === null) {
      daemon.kill("SIGTERM");
      await new Promise((r) => daemon.once("exit", r));
    }
    await scratch.dispose();
  });

  test("the socket is usable by its owner only", () => {
    const path = addr.slice("unix://".length);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(scratch.dir, "run")).mode & 0o777).toBe(0o700);
    expect(statSync(path).uid).toBe(process.getuid!());
  });

  test("two clients build at once, send only what .dockerignore lets through, and share the cache", async () => {
    const contexts = await Promise.all(
      ["one", "two"].map((name) =>
        scratch.context(`ctx-${name}`, {
          Dockerfile: [
            `FROM ${registry}/busybox:latest`,
            "COPY . /ctx",
            `RUN test ! -e /ctx/ignored.log && test -e /ctx/kept.txt && echo client-${name} && sleep 1`,
            "",
          ].join("\n"),
          ".dockerignore": "*.log\n",
          "kept.txt": name,
          "ignored.log": "must not travel",
        }),
      ),
    );
    const [one, two] = await Promise.all(contexts.map((c) => runKiln(scratch.root, ["--addr", addr, "build", "--progress", "plain", c])));
    expect(one!.code, one!.stderr).toBe(0);
    expect(two!.code, two!.stderr).toBe(0);
    expect(one!.stderr).toMatch(/#\d+ [\d.]+ client-one/);
    expect(two!.stderr).toMatch(/#\d+ [\d.]+ client-two/);
    // The two builds overlapped on the daemon: both were running before either finished.
    const starts = [...daemonLog.matchAll(/build (\S+) (started|done)/g)].map((m) => m[2]);
    expect(starts.slice(0, 2)).toEqual(["started", "started"]);

    // KILN_HOST works as --addr; the daemon's cache serves the rebuild.
    const again = await runKiln(scratch.root, ["build", "--progress", "plain", contexts[0]!], { env: { KILN_HOST: addr } });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/#\d+ \[3\/3\] RUN test ! -e .*\n#\d+ CACHED/);
  });

  test("a failed build on the daemon reports the Dockerfile excerpt and exits 1", async () => {
    const context = await scratch.context("failing", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo nope && exit 4\n` });
    const run = await runKiln(scratch.root, ["--addr", addr, "build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(">>> RUN echo nope && exit 4");
    expect(run.stderr).toMatch(/exit code: 4/);
  });

  test("a build asking for an entitlement the daemon was not started with is refused; one started with it grants it", async () => {
    const context = await scratch.context("entitled", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN --security=insecure echo privileged-$((40+2))\n` });
    const refused = await runKiln(scratch.root, ["--addr", addr, "build", "--progress", "plain", "--allow", "security.insecure", context]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Cannot grant entitlement "security.insecure": the kiln daemon does not allow it (start it with "kiln serve --allow-insecure-entitlement security.insecure")');

    const permissive = await startDaemon(join(scratch.dir, "entitled-root"), join(scratch.dir, "run-entitled/kiln.sock"), ["--allow-insecure-entitlement", "security.insecure"]);
    try {
      const granted = await runKiln(scratch.root, ["--addr", permissive.addr, "build", "--progress", "plain", "--allow", "security.insecure", context]);
      expect(granted.code, granted.stderr).toBe(0);
      expect(granted.stderr).toContain("privileged-42");
      // The daemon's own switch does not grant anything by itself: the build must still ask.
      const unasked = await runKiln(scratch.root, ["--addr", permissive.addr, "build", "--progress", "plain", "--no-cache", context]);
      expect(unasked.code).toBe(1);
      expect(unasked.stderr).toContain("security.insecure");
    } finally {
      await permissive.stop();
    }
    const bad = await runKiln(scratch.root, ["serve", "--addr", `unix://${join(scratch.dir, "run-bad/kiln.sock")}`, "--allow-insecure-entitlement", "root.everything"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Cannot allow "root.everything": it is not an entitlement');
  });

  test("a client that disconnects has its build cancelled: its container is stopped", async () => {
    const context = await scratch.context("disconnect", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo started-long && sleep 60\n` });
    const client = spawn(process.execPath, [join(REPO, "bin/kiln"), "--addr", addr, "build", "--progress", "plain", context], { stdio: ["ignore", "ignore", "pipe"] });
    await waitForOutput(client, /#\d+ [\d.]+ started-long/);
    const runcRoot = join(scratch.root, "executor/runc");
    const containers = (): string[] => execFileSync("runc", ["--root", runcRoot, "list", "-q"], { encoding: "utf8" }).split("\n").filter((l) => l !== "");
    expect(containers()).toHaveLength(1);
    client.kill("SIGKILL");
    await new Promise((r) => client.once("exit", r));
    // The daemon notices the closed connection and cancels; wait for it to say so.
    for (let i = 0; i < 300 && !/failed: Build cancelled: the client disconnected/.test(daemonLog); i++) await new Promise((r) => setTimeout(r, 100));
    expect(daemonLog).toMatch(/build \S+ failed: Build cancelled: the client disconnected/);
    expect(containers()).toEqual([]);
    expect(daemon.exitCode).toBeNull();
  });

  test("the daemon stops on SIGTERM and removes its socket", async () => {
    daemon.kill("SIGTERM");
    const code = await new Promise((r) => daemon.once("exit", r));
    expect(code).toBe(0);
    expect(existsSync(addr.slice("unix://".length))).toBe(false);
  });
});
