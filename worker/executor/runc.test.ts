import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isKilnError } from "../../solver/llb/index.js";
import { ExecError } from "./errors.js";
import { createRuncExecutor } from "./runc.js";
import { makeBusyboxRootfs } from "./testing/busybox-rootfs.js";
import type { Executor, ProcessSpec } from "./types.js";

let dir: string;
let rootfs: string;
let stateDir: string;
let executor: Executor;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-runc-"));
  rootfs = makeBusyboxRootfs(join(dir, "rootfs"));
  stateDir = join(dir, "state");
  executor = createRuncExecutor({ stateDir });
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function sh(script: string, extra: Partial<ProcessSpec> = {}): ProcessSpec {
  return { args: ["/bin/sh", "-c", script], env: [], cwd: "/", user: "", network: "host", ...extra };
}

async function output(spec: ProcessSpec): Promise<{ stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  await executor.run(rootfs, spec, [], { stdout: (d) => (stdout += d), stderr: (d) => (stderr += d) });
  return { stdout, stderr };
}

function mountsUnder(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(path));
}

describe("runc executor", () => {
  it("streams stdout and stderr separately", async () => {
    const out = await output(sh("echo to-out; echo to-err >&2"));
    expect(out.stdout).toBe("to-out\n");
    expect(out.stderr).toBe("to-err\n");
  });

  it("rejects a non-zero exit with ExecError carrying the code and the last 20 lines", async () => {
    const error = await executor.run(rootfs, sh("for i in $(seq 1 30); do echo line$i; done; exit 3"), []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExecError);
    const exec = error as ExecError;
    expect(isKilnError(exec) && exec.code).toBe("KILN_EXEC_FAILED");
    expect(exec.exitCode).toBe(3);
    expect(exec.message).toBe('process "/bin/sh -c for i in $(seq 1 30); do echo line$i; done; exit 3" did not complete successfully: exit code: 3');
    expect(exec.output).toHaveLength(20);
    expect(exec.output[0]).toBe("line11");
    expect(exec.output[19]).toBe("line30");
  });

  it("names the signal when the process is killed", async () => {
    // PID 1 of the namespace ignores SIGKILL sent from inside, so a child kills itself.
    const error = (await executor.run(rootfs, sh("sh -c 'kill -9 $$'; exit $?"), []).catch((e: unknown) => e)) as ExecError;
    expect(error.exitCode).toBe(137);
    expect(error.signal).toBe("SIGKILL");
  });

  it("runs as root by default with Docker's capabilities and no-new-privileges", async () => {
    const out = await output(sh("id -u; id -g; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"));
    const [uid, gid, capEff, nnp] = out.stdout.trim().split("\n");
    expect(uid).toBe("0");
    expect(gid).toBe("0");
    // Docker's default set is 0x00000000a80425fb.
    expect(capEff).toMatch(/00000000a80425fb$/);
    expect(nnp).toMatch(/1$/);
  });

  it("resolves USER nobody from the rootfs's /etc/passwd", async () => {
    const out = await output(sh("id -u; id -g", { user: "nobody" }));
    expect(out.stdout).toBe("65534\n65534\n");
  });

  it("gives a named user its supplementary groups and an explicit group none", async () => {
    expect((await output(sh("id -G", { user: "builder" }))).stdout).toBe("1000 10\n");
    expect((await output(sh("id -u; id -G", { user: "builder:nogroup" }))).stdout).toBe("1000\n65534\n");
    expect((await output(sh("id -u; id -g", { user: "4242:4343" }))).stdout).toBe("4242\n4343\n");
  });

  it("rejects an unknown user name before starting anything", async () => {
    await expect(executor.run(rootfs, sh("true", { user: "nosuchuser" }), [])).rejects.toMatchObject({ code: "KILN_USER_UNKNOWN" });
  });

  it("creates a missing working directory and runs in it", async () => {
    expect((await output(sh("pwd", { cwd: "/work/deep/dir" }))).stdout).toBe("/work/deep/dir\n");
    expect(statSync(join(rootfs, "work/deep/dir")).isDirectory()).toBe(true);
  });

  it("passes env and adds a default PATH", async () => {
    const out = await output({ args: ["sh", "-c", 'echo "$FOO|$PATH"'], env: ["FOO=bar baz"], cwd: "/", user: "", network: "host" });
    expect(out.stdout).toBe("bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  });

  it("sets the hostname and lists it in /etc/hosts", async () => {
    const out = await output(sh("hostname; cat /etc/hosts", { hostname: "myhost" }));
    expect(out.stdout.split("\n")[0]).toBe("myhost");
    expect(out.stdout).toContain("127.0.0.1\tlocalhost myhost");
  });

  it("leaves no stub /etc/hosts, /proc or /dev behind in the rootfs", async () => {
    await output(sh("true"));
    expect(existsSync(join(rootfs, "etc/hosts"))).toBe(false);
    expect(existsSync(join(rootfs, "etc/resolv.conf"))).toBe(false);
    expect(existsSync(join(rootfs, "proc"))).toBe(false);
    expect(existsSync(join(rootfs, "dev"))).toBe(false);
  });

  it("gives network none only a loopback interface", async () => {
    const out = await output(sh("ls /sys/class/net", { network: "none" }));
    expect(out.stdout.trim()).toBe("lo");
  });

  it("mounts binds read-only or writable and tmpfs", async () => {
    const data = mkdtempSync(join(dir, "data-"));
    let stdout = "";
    await executor.run(
      rootfs,
      sh("echo hi > /rw/f && cat /rw/f; touch /ro/x 2>/dev/null || echo ro-refused; grep ' /scratch ' /proc/mounts | cut -d' ' -f3"),
      [
        { kind: "bind", source: data, target: "/rw", readonly: false },
        { kind: "bind", source: data, target: "/ro", readonly: true },
        { kind: "tmpfs", target: "/scratch" },
      ],
      { stdout: (d) => (stdout += d) },
    );
    expect(stdout).toBe("hi\nro-refused\ntmpfs\n");
    expect(readFileSync(join(data, "f"), "utf8")).toBe("hi\n");
  });

  it("kills a running process on abort and leaves no runc state and no mounts", async () => {
    const controller = new AbortController();
    let started!: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    const run = executor.run(rootfs, sh("echo up; sleep 100"), [], {
      signal: controller.signal,
      stdout: () => started(),
    });
    await ready;
    controller.abort(new Error("cancelled by test"));
    await expect(run).rejects.toThrow("cancelled by test");
    const list = execFileSync("runc", ["--root", join(stateDir, "runc"), "list", "-q"], { encoding: "utf8" });
    expect(list.trim()).toBe("");
    expect(mountsUnder(rootfs)).toEqual([]);
    expect(existsSync(join(stateDir, "bundles")) ? execFileSync("ls", [join(stateDir, "bundles")], { encoding: "utf8" }) : "").toBe("");
  });
});
