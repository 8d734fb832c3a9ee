import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecError } from "./errors.js";
import { createRuncExecutor } from "./runc.js";
import { makeBusyboxRootfs } from "./testing/busybox-rootfs.js";
import { SYSCALLS, writeSyscallProbe } from "./testing/syscall-probe.js";
import type { Executor, ProcessSpec } from "./types.js";

let dir: string;
let rootfs: string;
let executor: Executor;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-security-"));
  rootfs = makeBusyboxRootfs(join(dir, "rootfs"));
  writeSyscallProbe(join(rootfs, "bin/add-key"), SYSCALLS.add_key);
  writeSyscallProbe(join(rootfs, "bin/keyctl"), SYSCALLS.keyctl);
  executor = createRuncExecutor({ stateDir: join(dir, "state") });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function sh(script: string, extra: Partial<ProcessSpec> = {}): ProcessSpec {
  return { args: ["/bin/sh", "-c", script], env: [], cwd: "/", user: "", network: "host", ...extra };
}

async function stdout(spec: ProcessSpec): Promise<string> {
  let out = "";
  await executor.run(rootfs, spec, [], { stdout: (d) => (out += d), stderr: (d) => (out += d) });
  return out;
}

/** The `CapEff:` mask of this test process (what an insecure RUN may get at most). */
function ownCapEff(): string {
  return /^CapEff:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "";
}

describe("RUN security", () => {
  it("runs a sandboxed process under a seccomp filter that refuses the key ring with EPERM", async () => {
    const out = await stdout(sh("grep '^Seccomp:' /proc/self/status; /bin/add-key; echo add_key=$?; /bin/keyctl; echo keyctl=$?"));
    expect(out).toContain("Seccomp:\t2");
    expect(out).toContain("add_key=1");
    expect(out).toContain("keyctl=1");
  });

  it("refuses unshare and mount in a sandboxed process with EPERM", async () => {
    // Without seccomp an unprivileged user namespace is allowed here; the profile refuses the syscall.
    const error = (await executor.run(rootfs, sh("unshare -U true"), []).catch((e: unknown) => e)) as ExecError;
    expect(error).toBeInstanceOf(ExecError);
    expect(error.output.join("\n")).toMatch(/Operation not permitted/);
    const mount = await stdout(sh("mkdir -p /mnt/t; mount -t tmpfs none /mnt/t; echo mount=$?"));
    expect(mount).toMatch(/mount=[1-9]/);
  });

  it("still runs ordinary work (threads, files, signals, pipes) in the sandbox", async () => {
    const out = await stdout(sh("echo a | tr a b; sleep 0 & wait; mkdir -p /tmp/x && echo ok > /tmp/x/f && cat /tmp/x/f; ls / >/dev/null; kill -0 $$ && echo alive"));
    expect(out).toBe("b\nok\nalive\n");
  });

  it("runs an insecure process with every capability kiln holds, no seccomp and nothing masked", async () => {
    const out = await stdout(sh("grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; /bin/add-key; echo add_key=$?; unshare -U true && echo unshare=ok; mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mount=ok; cat /proc/keys >/dev/null && echo keys=readable", { security: "insecure" }));
    expect(out).toContain(`CapEff:\t${ownCapEff()}`);
    expect(out).toContain("Seccomp:\t0");
    expect(out).toContain("NoNewPrivs:\t0");
    expect(out).toContain("add_key=14");
    expect(out).toContain("unshare=ok");
    expect(out).toContain("mount=ok");
    expect(out).toContain("keys=readable");
  });

  it("gives a sandboxed process Docker's default capability set only", async () => {
    const out = await stdout(sh("grep '^CapEff:' /proc/self/status", { security: "sandbox" }));
    expect(out).toBe("CapEff:\t00000000a80425fb\n");
  });
});
