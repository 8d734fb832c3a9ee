import { readFileSync } from "node:fs";
import { release } from "node:os";
import { gunzipSync } from "node:zlib";

/**
 * Docker's default seccomp profile (moby's profiles/seccomp/default.json, which BuildKit applies
 * to every sandboxed RUN), written from its semantics: everything not listed fails with EPERM; a
 * long allowlist of ordinary syscalls; syscalls that need a capability (mount, unshare, setns…
 * with CAP_SYS_ADMIN; ptrace with CAP_SYS_PTRACE; …) allowed only when the process's bounding set
 * holds it; `clone` without CAP_SYS_ADMIN only when it asks for no new namespace; `clone3`
 * answered with ENOSYS (so libc falls back to `clone`, whose flags seccomp can inspect); `socket`
 * for every family but AF_VSOCK; `personality` for the few harmless personas. keyctl, add_key,
 * request_key, bpf, perf_event_open, kexec and friends are absent, hence denied.
 *
 * `seccompProfile()` resolves the conditional groups for one process (its capabilities, this
 * machine's architecture and kernel) into the OCI runtime spec's `linux.seccomp`, as moby's
 * setupSeccomp does.
 */

/** The OCI runtime spec's `linux.seccomp` (the subset kiln writes). */
export interface LinuxSeccomp {
  readonly defaultAction: SeccompAction;
  readonly defaultErrnoRet: number;
  readonly architectures: readonly string[];
  readonly syscalls: readonly LinuxSyscall[];
}

export type SeccompAction = "SCMP_ACT_ALLOW" | "SCMP_ACT_ERRNO";

export interface LinuxSyscall {
  readonly names: readonly string[];
  readonly action: SeccompAction;
  readonly errnoRet?: number;
  readonly args?: readonly SeccompArg[];
}

export interface SeccompArg {
  readonly index: number;
  readonly value: number;
  readonly valueTwo?: number;
  readonly op: "SCMP_CMP_EQ" | "SCMP_CMP_NE" | "SCMP_CMP_MASKED_EQ";
}

/** Go's GOARCH names, as the profile's arch conditions use them. */
type GoArch = "amd64" | "x32" | "x86" | "arm" | "arm64" | "ppc64le" | "s390" | "s390x" | "riscv64";

/** When a group applies: every `includes` condition holds and no `excludes` one does. */
interface Condition {
  readonly caps?: readonly string[];
  readonly arches?: readonly GoArch[];
  /** `major.minor`: the running kernel is at least this. */
  readonly minKernel?: string;
}

interface Group {
  readonly names: readonly string[];
  readonly action?: SeccompAction;
  readonly errnoRet?: number;
  readonly args?: readonly SeccompArg[];
  readonly includes?: Condition;
  readonly excludes?: Condition;
}

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;
/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x00020000 + 0x02000000 + 0x04000000 + 0x08000000 + 0x10000000 + 0x20000000 + 0x40000000;
/** PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query the persona). */
const PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const names = (text: string): string[] => text.trim().split(/\s+/);

/** Allowed for everyone: files, memory, signals, time, sockets, ipc, scheduling, ids. */
const ALLOWED = names(`
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
  epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
  eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
  fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
  fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
  ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
  getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
  getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
  getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
  get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
  inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
  io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
  io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
  lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat
  lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
  mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
  mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv
  msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat
  openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
  ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
  pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64
  recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
  rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
  rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
  sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
  sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
  sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
  sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
  setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
  setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
  setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
  socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range
  syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
  timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
  timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink
  unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`);

/** Capability-gated groups: allowed only when the process holds the capability. */
const BY_CAPABILITY: readonly (readonly [string, string])[] = [
  ["CAP_DAC_READ_SEARCH", "open_by_handle_at"],
  [
    "CAP_SYS_ADMIN",
    `bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr
     move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
     umount umount2 unshare`,
  ],
  ["CAP_SYS_BOOT", "reboot"],
  ["CAP_SYS_CHROOT", "chroot"],
  ["CAP_SYS_MODULE", "delete_module init_module finit_module"],
  ["CAP_SYS_PACCT", "acct"],
  ["CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"],
  ["CAP_SYS_RAWIO", "iopl ioperm"],
  ["CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"],
  ["CAP_SYS_TTY_CONFIG", "vhangup"],
  ["CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"],
  ["CAP_SYSLOG", "syslog"],
  ["CAP_BPF", "bpf"],
  ["CAP_PERFMON", "perf_event_open"],
];

/** The profile's rules, in its order. */
const GROUPS: readonly Group[] = [
  { names: ALLOWED },
  { names: ["process_vm_readv", "process_vm_writev", "ptrace"], includes: { minKernel: "4.8" } },
  { names: ["socket"], args: [{ index: 0, value: AF_VSOCK, op: "SCMP_CMP_NE" }] },
  ...PERSONAS.map((persona): Group => ({ names: ["personality"], args: [{ index: 0, value: persona, op: "SCMP_CMP_EQ" }] })),
  { names: ["sync_file_range2", "swapcontext"], includes: { arches: ["ppc64le"] } },
  { names: names("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"), includes: { arches: ["arm", "arm64"] } },
  { names: ["arch_prctl"], includes: { arches: ["amd64", "x32"] } },
  { names: ["modify_ldt"], includes: { arches: ["amd64", "x32", "x86"] } },
  { names: names("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"), includes: { arches: ["s390", "s390x"] } },
  { names: ["riscv_flush_icache"], includes: { arches: ["riscv64"] } },
  ...BY_CAPABILITY.map(([cap, list]): Group => ({ names: names(list), includes: { caps: [cap] } })),
  // Without CAP_SYS_ADMIN: clone only when no namespace flag is set (s390 passes flags second).
  { names: ["clone"], args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }], excludes: { caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"] } },
  { names: ["clone"], args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }], includes: { arches: ["s390", "s390x"] }, excludes: { caps: ["CAP_SYS_ADMIN"] } },
  // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
  { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS, excludes: { caps: ["CAP_SYS_ADMIN"] } },
];

/** libseccomp's architecture names: the native one first, then those its binaries may also use. */
const ARCHITECTURES: Readonly<Partial<Record<NodeJS.Architecture, { readonly goArch: GoArch; readonly scmp: readonly string[] }>>> = {
  x64: { goArch: "amd64", scmp: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
  ia32: { goArch: "x86", scmp: ["SCMP_ARCH_X86"] },
  arm64: { goArch: "arm64", scmp: ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"] },
  arm: { goArch: "arm", scmp: ["SCMP_ARCH_ARM"] },
  s390x: { goArch: "s390x", scmp: ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"] },
  ppc64: { goArch: "ppc64le", scmp: ["SCMP_ARCH_PPC64LE"] },
  riscv64: { goArch: "riscv64", scmp: ["SCMP_ARCH_RISCV64"] },
};

export interface SeccompTarget {
  /** The process's bounding capabilities: a capability-gated group applies only when it holds them all. */
  readonly capabilities: readonly string[];
  /** Default: this process's (`process.arch`). */
  readonly arch?: NodeJS.Architecture;
  /** `uname -r` of the kernel; default this machine's. */
  readonly kernel?: string;
  /** Whether the kernel runs x32 programs; default: read from its build config (kernelHasX32Abi). */
  readonly x32Abi?: boolean;
}

/**
 * Docker's default profile resolved for one process, as the runtime spec's `linux.seccomp`.
 * On an architecture the profile has no entry for, the architectures list is empty (libseccomp
 * then filters the native one only).
 */
export function seccompProfile(target: SeccompTarget): LinuxSeccomp {
  const arch = ARCHITECTURES[target.arch ?? process.arch];
  const caps = new Set(target.capabilities);
  const kernel = target.kernel ?? release();
  const holds = (c: Condition | undefined, all: boolean): boolean => {
    if (c === undefined) return all;
    const checks = [
      c.caps === undefined ? undefined : all ? c.caps.every((x) => caps.has(x)) : c.caps.some((x) => caps.has(x)),
      c.arches === undefined ? undefined : arch !== undefined && c.arches.includes(arch.goArch),
      c.minKernel === undefined ? undefined : kernelAtLeast(kernel, c.minKernel),
    ].filter((v) => v !== undefined);
    return all ? checks.every(Boolean) : checks.some(Boolean);
  };
  const syscalls = GROUPS.filter((g) => holds(g.includes, true) && !holds(g.excludes, false)).map((g): LinuxSyscall => ({
    names: g.names,
    action: g.action ?? "SCMP_ACT_ALLOW",
    ...(g.errnoRet === undefined ? {} : { errnoRet: g.errnoRet }),
    ...(g.args === undefined ? {} : { args: g.args }),
  }));
  // A kernel built without the x32 ABI cannot run an x32 syscall, so filtering for it guards
  // nothing; and runc compiles the profile on every RUN, where x32 costs ~30 ms of ~90.
  const x32 = arch?.scmp.includes("SCMP_ARCH_X32") === true ? (target.x32Abi ?? kernelHasX32Abi()) : false;
  const architectures = (arch?.scmp ?? []).filter((a) => a !== "SCMP_ARCH_X32" || x32);
  return { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: EPERM, architectures, syscalls };
}

let x32Known: boolean | undefined;

/**
 * Whether this machine's kernel was built with the x32 ABI (CONFIG_X86_X32_ABI), from
 * /proc/config.gz or /boot/config-RELEASE. Only a config that says it is not set gives false:
 * when the config cannot be read, x32 stays in the profile (the safe side). Read once.
 */
export function kernelHasX32Abi(): boolean {
  if (x32Known !== undefined) return x32Known;
  let config: string | undefined;
  try {
    config = gunzipSync(readFileSync("/proc/config.gz")).toString("latin1");
  } catch {
    try {
      config = readFileSync(`/boot/config-${release()}`, "latin1");
    } catch {
      config = undefined;
    }
  }
  x32Known = config === undefined || !/^# CONFIG_X86_X32_ABI is not set$/m.test(config);
  return x32Known;
}

/** Whether kernel release `running` (`6.1.0-18-amd64`) is at least `minimum` (`4.8`). */
export function kernelAtLeast(running: string, minimum: string): boolean {
  const parse = (v: string) => (/^(\d+)\.(\d+)/.exec(v) ?? []).slice(1).map(Number);
  const [major = 0, minor = 0] = parse(running);
  const [wantMajor = 0, wantMinor = 0] = parse(minimum);
  return major !== wantMajor ? major > wantMajor : minor >= wantMinor;
}
