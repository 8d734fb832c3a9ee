import { describe, expect, it } from "vitest";
import { DEFAULT_CAPABILITIES } from "./capabilities.js";
import { kernelAtLeast, seccompProfile, type LinuxSeccomp } from "./seccomp.js";

function allowed(profile: LinuxSeccomp, name: string): boolean {
  return profile.syscalls.some((s) => s.action === "SCMP_ACT_ALLOW" && s.args === undefined && s.names.includes(name));
}

describe("default seccomp profile", () => {
  const sandbox = seccompProfile({ capabilities: DEFAULT_CAPABILITIES, arch: "x64", kernel: "6.1.0-18-amd64", x32Abi: true });

  it("denies everything not listed with EPERM", () => {
    expect(sandbox.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(sandbox.defaultErrnoRet).toBe(1);
  });

  it("leaves x32 out for a kernel built without the x32 ABI, which cannot run x32 syscalls", () => {
    expect(seccompProfile({ capabilities: [], arch: "x64", x32Abi: false }).architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
  });

  it("covers x86_64 with its 32-bit and x32 sub-architectures, and aarch64 with arm", () => {
    expect(sandbox.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    expect(seccompProfile({ capabilities: [], arch: "arm64" }).architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  });

  it("allows ordinary syscalls and denies the key ring, mounts, namespaces and module loading to Docker's default capabilities", () => {
    for (const name of ["read", "openat", "clone3", "execve", "chroot", "arch_prctl"]) expect(sandbox.syscalls.some((s) => s.names.includes(name)), name).toBe(true);
    for (const name of ["keyctl", "add_key", "request_key", "mount", "umount2", "unshare", "setns", "init_module", "bpf", "reboot", "kexec_load"]) {
      expect(allowed(sandbox, name), name).toBe(false);
    }
  });

  it("answers clone3 with ENOSYS and allows clone only without namespace flags when CAP_SYS_ADMIN is missing", () => {
    expect(sandbox.syscalls.find((s) => s.names.includes("clone3"))).toEqual({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 });
    const clone = sandbox.syscalls.filter((s) => s.names.includes("clone"));
    expect(clone).toEqual([{ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] }]);
  });

  it("grants the capability-gated groups to a process that holds the capability", () => {
    const admin = seccompProfile({ capabilities: [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], arch: "x64", kernel: "6.1" });
    for (const name of ["mount", "unshare", "setns", "clone", "clone3", "ptrace", "kcmp"]) expect(allowed(admin, name), name).toBe(true);
    expect(admin.syscalls.some((s) => s.action === "SCMP_ACT_ERRNO")).toBe(false);
    expect(allowed(admin, "keyctl")).toBe(false);
  });

  it("keeps arch-specific groups to their architecture", () => {
    expect(allowed(sandbox, "modify_ldt")).toBe(true);
    expect(allowed(sandbox, "set_tls")).toBe(false);
    const arm = seccompProfile({ capabilities: DEFAULT_CAPABILITIES, arch: "arm64", kernel: "6.1" });
    expect(allowed(arm, "set_tls")).toBe(true);
    expect(allowed(arm, "arch_prctl")).toBe(false);
  });

  it("allows socket for every family but AF_VSOCK and personality only for the harmless personas", () => {
    expect(sandbox.syscalls.find((s) => s.names.includes("socket"))?.args).toEqual([{ index: 0, value: 40, op: "SCMP_CMP_NE" }]);
    const personas = sandbox.syscalls.filter((s) => s.names.includes("personality")).map((s) => s.args?.[0]?.value);
    expect(personas).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
  });

  it("allows ptrace on kernels from 4.8 only", () => {
    expect(allowed(sandbox, "ptrace")).toBe(true);
    expect(seccompProfile({ capabilities: [], arch: "x64", kernel: "4.4.0" }).syscalls.some((s) => s.names.includes("ptrace"))).toBe(false);
  });

  it("compares kernel releases numerically", () => {
    expect(kernelAtLeast("6.18.0", "4.8")).toBe(true);
    expect(kernelAtLeast("4.10.1", "4.8")).toBe(true);
    expect(kernelAtLeast("4.7.0", "4.8")).toBe(false);
    expect(kernelAtLeast("3.19", "4.8")).toBe(false);
  });
});
