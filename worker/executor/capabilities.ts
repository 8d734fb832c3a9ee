import { readFileSync } from "node:fs";

/** Docker's default capability set (moby's oci/caps defaults), granted to every sandboxed RUN. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

/** Every capability Linux defines, by bit number (linux/capability.h). */
const CAPABILITY_BITS: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
  "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
  "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/** The capability names of a `/proc/PID/status` mask (`CapEff:` hex), ignoring bits Linux has no name for. */
export function capabilityNames(hexMask: string): string[] {
  const mask = BigInt(`0x${hexMask.trim() || "0"}`);
  return CAPABILITY_BITS.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

let own: readonly string[] | undefined;

/**
 * The capabilities this process holds (its effective set): what `RUN --security=insecure` gets,
 * as BuildKit grants the daemon's own set rather than a fixed list (a capability the process lacks
 * cannot be granted to a container).
 */
export function ownCapabilities(statusText?: string): readonly string[] {
  if (statusText === undefined && own !== undefined) return own;
  const text = statusText ?? readFileSync("/proc/self/status", "utf8");
  const line = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(text);
  const names = capabilityNames(line?.[1] ?? "0");
  if (statusText === undefined) own = names;
  return names;
}
