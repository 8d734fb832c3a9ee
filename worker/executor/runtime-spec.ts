import { readFileSync } from "node:fs";
import { DEFAULT_CAPABILITIES, ownCapabilities } from "./capabilities.js";
import type { ResolvedUser } from "./rootfs-user.js";
import { seccompProfile } from "./seccomp.js";
import type { ExecMount, ProcessSpec } from "./types.js";

/** Paths Docker hides from containers (bind-mounted over with /dev/null or an empty tmpfs). */
export const MASKED_PATHS: readonly string[] = [
  "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
];

/** Paths Docker makes read-only inside containers. */
export const READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** An OCI runtime-spec mount entry. */
export interface SpecMount {
  readonly destination: string;
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

/** The parts of a RUN's runtime spec that are not the process itself. */
export interface SpecInputs {
  /** The rootfs directory (absolute). */
  readonly rootfs: string;
  readonly process: ProcessSpec;
  readonly user: ResolvedUser;
  readonly hostname: string;
  /** Host files the executor generated for this run, bind-mounted read-only at /etc/…. */
  readonly hostsFile: string;
  readonly resolvConfFile: string;
  readonly mounts: readonly ExecMount[];
  /** RLIMIT_NOFILE for the process; see `nofileLimit()`. */
  readonly nofile: number;
  /** Inside rootless kiln's user namespace: no cgroup resources (runc cannot set them there). */
  readonly rootless?: boolean;
  /** Whether runc filters syscalls (`runc features`); default true. Without it no seccomp section is written. */
  readonly seccomp?: boolean;
}

/**
 * The OCI runtime spec (config.json) runc 1.1 runs a RUN with: no terminal; pid, mount, ipc and
 * uts namespaces, plus a network namespace unless the network is shared with the host;
 * RLIMIT_NOFILE (see nofileLimit). The op's own mounts come last, ordered so that a parent
 * target is mounted before what sits inside it.
 *
 * Security, as BuildKit's OCI worker: `sandbox` (the default) gets Docker's default capabilities
 * and seccomp profile, masked and read-only /proc paths, a read-only /sys, no-new-privileges and
 * no device but runc's defaults. `insecure` (`RUN --security=insecure`, allowed only with the
 * `security.insecure` entitlement, which the caller checks) is `docker run --privileged`: every
 * capability this process holds in every set, no seccomp, nothing masked or read-only, a
 * writable /sys, and (as root) every device allowed with /dev/fuse, /dev/net/tun, /dev/kvm,
 * /dev/kmsg, /dev/cuse and loop devices created.
 */
export function buildRuntimeSpec(inputs: SpecInputs): Record<string, unknown> {
  const { process, user } = inputs;
  const hostNetwork = process.network !== "none";
  const insecure = process.security === "insecure";
  const namespaces = [{ type: "pid" }, { type: "mount" }, { type: "ipc" }, { type: "uts" }, ...(hostNetwork ? [] : [{ type: "network" }])];
  const capabilities = insecure ? [...ownCapabilities()] : [...DEFAULT_CAPABILITIES];
  const capabilitySets = insecure
    ? { bounding: capabilities, effective: capabilities, permitted: capabilities, inheritable: capabilities, ambient: capabilities }
    : { bounding: capabilities, effective: capabilities, permitted: capabilities };
  const rootful = inputs.rootless !== true;
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: [...user.additionalGids] } : {}) },
      args: [...process.args],
      env: withDefaultPath(process.env),
      cwd: process.cwd === "" ? "/" : process.cwd,
      capabilities: capabilitySets,
      rlimits: [{ type: "RLIMIT_NOFILE", hard: inputs.nofile, soft: inputs.nofile }],
      noNewPrivileges: !insecure,
    },
    root: { path: inputs.rootfs, readonly: false },
    hostname: inputs.hostname,
    mounts: [...systemMounts(hostNetwork, insecure), ...etcMounts(inputs), ...opMounts(inputs.mounts)],
    linux: {
      namespaces,
      // Rootless: the device cgroup cannot be set up, and the user namespace already keeps
      // device nodes on its own mounts from being opened (only host devices runc binds work).
      ...(rootful ? { resources: { devices: insecure ? ALL_DEVICES : [{ allow: false, access: "rwm" }] } } : {}),
      ...(insecure && rootful ? { devices: PRIVILEGED_DEVICES } : {}),
      maskedPaths: insecure ? [] : [...MASKED_PATHS],
      readonlyPaths: insecure ? [] : [...READONLY_PATHS],
      ...(insecure || inputs.seccomp === false ? {} : { seccomp: seccompProfile({ capabilities }) }),
    },
  };
}

/** The device cgroup of an insecure RUN: every character and block device. */
const ALL_DEVICES = [
  { allow: true, type: "c", access: "rwm" },
  { allow: true, type: "b", access: "rwm" },
];

/** Devices an insecure RUN finds in /dev (BuildKit's list; loop devices 0-7). */
const PRIVILEGED_DEVICES = [
  { path: "/dev/kmsg", type: "c", major: 1, minor: 11 },
  { path: "/dev/cuse", type: "c", major: 10, minor: 203 },
  { path: "/dev/fuse", type: "c", major: 10, minor: 229 },
  { path: "/dev/kvm", type: "c", major: 10, minor: 232 },
  { path: "/dev/net/tun", type: "c", major: 10, minor: 200 },
  { path: "/dev/loop-control", type: "c", major: 10, minor: 237 },
  ...Array.from({ length: 8 }, (_, i) => ({ path: `/dev/loop${i}`, type: "b", major: 7, minor: i })),
].map((d) => ({ ...d, fileMode: 0o660, uid: 0, gid: 0 }));

/** BuildKit's (and containerd's) RLIMIT_NOFILE for a RUN. */
export const DEFAULT_NOFILE = 1048576;

/**
 * The RLIMIT_NOFILE to give a RUN: BuildKit's 1048576, lowered to this process's hard limit
 * when that is smaller, because runc sets rlimits after dropping CAP_SYS_RESOURCE and cannot
 * raise a hard limit then (on hosts and in user namespaces that withhold the capability, a
 * higher value makes every RUN fail to start).
 */
export function nofileLimit(limitsText = readOwnLimits()): number {
  const line = limitsText.split("\n").find((l) => l.startsWith("Max open files"));
  const hard = line?.trim().split(/\s+/)[4];
  if (hard === undefined || hard === "unlimited") return DEFAULT_NOFILE;
  const value = Number(hard);
  return Number.isFinite(value) && value > 0 ? Math.min(DEFAULT_NOFILE, value) : DEFAULT_NOFILE;
}

function readOwnLimits(): string {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return "";
  }
}

/** The PATH a RUN gets when its env has none (Docker's default for Linux). */
export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function withDefaultPath(env: readonly string[]): string[] {
  return env.some((e) => e.startsWith("PATH=")) ? [...env] : [DEFAULT_PATH, ...env];
}

function systemMounts(hostNetwork: boolean, writableSys: boolean): SpecMount[] {
  const sys = writableSys ? "rw" : "ro";
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    // A fresh sysfs shows the network devices of the mounting process's network namespace, and
    // the kernel refuses it to a process that does not own that namespace: with the host's
    // network, bind the host's /sys (read-only, recursively) instead.
    hostNetwork
      ? { destination: "/sys", type: "bind", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", sys] }
      : { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", sys] },
  ];
}

function etcMounts(inputs: SpecInputs): SpecMount[] {
  return [
    { destination: "/etc/hosts", type: "bind", source: inputs.hostsFile, options: ["bind", "ro", "nosuid", "nodev", "noexec"] },
    { destination: "/etc/resolv.conf", type: "bind", source: inputs.resolvConfFile, options: ["bind", "ro", "nosuid", "nodev", "noexec"] },
  ];
}

function opMounts(mounts: readonly ExecMount[]): SpecMount[] {
  const depth = (target: string) => target.split("/").filter((p) => p !== "").length;
  const sorted = [...mounts].sort((a, b) => depth(a.target) - depth(b.target));
  return sorted.map((m): SpecMount => {
    switch (m.kind) {
      case "bind":
        return { destination: m.target, type: "bind", source: m.source, options: ["rbind", m.readonly ? "ro" : "rw"] };
      case "tmpfs":
        return {
          destination: m.target,
          type: "tmpfs",
          source: "tmpfs",
          options: ["nosuid", "nodev", "mode=1777", ...(m.size === undefined ? [] : [`size=${m.size}`])],
        };
    }
  });
}
