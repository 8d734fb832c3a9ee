import { constants as osConstants } from "node:os";
import { createRequire } from "node:module";
import type koffiModule from "koffi";
import { KilnError } from "../solver/llb/index.js";

/**
 * The system calls Node lacks, through koffi: mount/umount, the new mount API (fsopen, fsconfig,
 * fsmount, move_mount: its `lowerdir+` lifts the page-size limit on overlay option strings),
 * mknod for overlay whiteouts, and extended attributes. The only file that touches koffi.
 */

export class SyscallError extends KilnError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoCode: string;
  constructor(syscall: string, errno: number, detail: string) {
    const errnoCode = errnoName(errno);
    super("KILN_SYSCALL_FAILED", `${syscall} failed for ${detail}: ${errnoCode} (errno ${errno})`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoCode = errnoCode;
  }
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return `E${errno}`;
}

/**
 * koffi and the libc functions, loaded on first use: loading koffi's native addon costs about
 * 15 ms of every kiln start, and a fully cached build makes none of these calls.
 */
function bindLibc() {
  const koffi = createRequire(import.meta.url)("koffi") as typeof koffiModule;
  const libc = koffi.load("libc.so.6");
  koffi.struct("timespec", { tv_sec: "int64_t", tv_nsec: "long" });
  return {
    koffi,
    mount: libc.func("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)"),
    umount2: libc.func("int umount2(const char *target, int flags)"),
    mknod: libc.func("int mknod(const char *path, uint32_t mode, uint64_t dev)"),
    lsetxattr: libc.func("int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)"),
    lgetxattr: libc.func("intptr_t lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)"),
    llistxattr: libc.func("intptr_t llistxattr(const char *path, _Out_ uint8_t *list, size_t size)"),
    fsopen: libc.func("int fsopen(const char *fsname, unsigned int flags)"),
    fsconfig: libc.func("int fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)"),
    fsmount: libc.func("int fsmount(int fd, unsigned int flags, unsigned int attrFlags)"),
    moveMount: libc.func("int move_mount(int fromDirfd, const char *fromPath, int toDirfd, const char *toPath, unsigned int flags)"),
    close: libc.func("int close(int fd)"),
    utimensat: libc.func("int utimensat(int dirfd, const char *path, const timespec *times, int flags)"),
  };
}

let bound: ReturnType<typeof bindLibc> | undefined;

function native(): ReturnType<typeof bindLibc> {
  bound ??= bindLibc();
  return bound;
}

export const MountFlags = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
} as const;

const MNT_DETACH = 2;
const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const FSMOUNT_CLOEXEC = 1;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const AT_FDCWD = -100;
const S_IFCHR = 0o020000;
const ENODATA = 61;

function check(result: number | bigint, syscall: string, detail: string): number {
  const value = Number(result);
  if (value < 0) throw new SyscallError(syscall, native().koffi.errno(), detail);
  return value;
}

/** mount(2). `data` is the filesystem's option string. */
export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  check(native().mount(source, target, fstype, flags, data), "mount", `"${target}" (${fstype ?? "bind"} from "${source}")`);
}

/** umount2(2); `detach` is MNT_DETACH (lazy). */
export function unmount(target: string, options: { detach?: boolean } = {}): void {
  check(native().umount2(target, options.detach === true ? MNT_DETACH : 0), "umount2", `"${target}"`);
}

export interface OverlayOptions {
  /** Lower directories, topmost first (overlayfs order). */
  readonly lowerdirs: readonly string[];
  /** Upper and work directory; both absent for a read-only overlay (which needs two lowers or more). */
  readonly upperdir?: string;
  readonly workdir?: string;
  /** Store overlay metadata in user.* xattrs: required inside a user namespace. */
  readonly userxattr?: boolean;
  readonly readonly?: boolean;
  /**
   * overlayfs's `volatile` (kernel 5.10+): syncs of the overlay are skipped, and so is the sync of
   * the whole upper filesystem that unmounting would do. After a volatile mount the workdir holds
   * `work/incompat/volatile`, and the kernel refuses to mount that upper/work pair again until it
   * is removed (it would mean a crash may have lost writes).
   */
  readonly volatile?: boolean;
}

/**
 * Mounts an overlay at `target`. Uses the classic option string while it fits in a page, and the
 * new mount API with one `lowerdir+` per layer beyond that (kernel 6.8+), so layer chains of
 * hundreds of snapshots mount.
 */
export function mountOverlay(target: string, options: OverlayOptions): void {
  const extra = [
    ...(options.upperdir === undefined ? [] : [`upperdir=${options.upperdir}`, `workdir=${options.workdir ?? ""}`]),
    ...(options.userxattr === true ? ["userxattr"] : []),
    ...(options.volatile === true ? ["volatile"] : []),
  ];
  const classic = [`lowerdir=${options.lowerdirs.join(":")}`, ...extra].join(",");
  const flags = options.readonly === true ? MountFlags.RDONLY : 0;
  if (classic.length < 4000 && !options.lowerdirs.some((d) => d.includes(":") || d.includes(","))) {
    mount("overlay", target, "overlay", flags, classic);
    return;
  }
  const detail = `"${target}" (overlay of ${options.lowerdirs.length} lowers)`;
  const fd = check(native().fsopen("overlay", 1 /* FSOPEN_CLOEXEC */), "fsopen", detail);
  try {
    for (const dir of options.lowerdirs) check(native().fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", dir, 0), "fsconfig", `${detail}: lowerdir+ "${dir}"`);
    if (options.upperdir !== undefined) {
      check(native().fsconfig(fd, FSCONFIG_SET_STRING, "upperdir", options.upperdir, 0), "fsconfig", detail);
      check(native().fsconfig(fd, FSCONFIG_SET_STRING, "workdir", options.workdir ?? "", 0), "fsconfig", detail);
    }
    if (options.userxattr === true) check(native().fsconfig(fd, FSCONFIG_SET_FLAG, "userxattr", null, 0), "fsconfig", detail);
    if (options.volatile === true) check(native().fsconfig(fd, FSCONFIG_SET_FLAG, "volatile", null, 0), "fsconfig", detail);
    check(native().fsconfig(fd, FSCONFIG_CMD_CREATE, null, null, 0), "fsconfig", `${detail}: create`);
    const mfd = check(native().fsmount(fd, FSMOUNT_CLOEXEC, options.readonly === true ? 1 /* MOUNT_ATTR_RDONLY */ : 0), "fsmount", detail);
    try {
      check(native().moveMount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), "move_mount", detail);
    } finally {
      native().close(mfd);
    }
  } finally {
    native().close(fd);
  }
}

/** Makes an overlay whiteout: a character device 0:0 at `path`. */
export function mknodWhiteout(path: string): void {
  check(native().mknod(path, S_IFCHR, 0n), "mknod", `whiteout "${path}"`);
}

/** The kinds of special file `mknod` makes. */
export type SpecialFileKind = "char" | "block" | "fifo";

const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/**
 * mknod(2): a character or block device (`major`:`minor`) or a fifo at `path`, with permission
 * bits `mode` (subject to the umask, so callers chmod afterwards when exact bits matter).
 */
export function mknod(path: string, kind: SpecialFileKind, mode: number, major = 0, minor = 0): void {
  const type = kind === "char" ? S_IFCHR : kind === "block" ? S_IFBLK : S_IFIFO;
  check(native().mknod(path, type | (mode & 0o7777), makedev(major, minor)), "mknod", `${kind} "${path}" (${major}:${minor})`);
}

/** glibc's makedev(): the 64-bit dev_t of a major and minor number. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

const AT_SYMLINK_NOFOLLOW = 0x100;

/**
 * Sets the access and modification times of `path` itself (not following a symlink) to the
 * nanosecond, which Node's `lutimes` cannot (it takes seconds as a double).
 */
export function lutimesNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const times = [atimeNs, mtimeNs].map((ns) => ({ tv_sec: ns / 1_000_000_000n, tv_nsec: Number(ns % 1_000_000_000n) }));
  check(native().utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), "utimensat", `"${path}"`);
}

/** Sets an extended attribute on `path` itself (not following a symlink). */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  check(native().lsetxattr(path, name, value, value.byteLength, 0), "lsetxattr", `"${path}" (${name})`);
}

/** An extended attribute of `path` itself, or undefined when it has none of that name. */
export function getXattr(path: string, name: string): Buffer | undefined {
  const buffer = xattrScratch();
  const size = Number(native().lgetxattr(path, name, buffer, buffer.byteLength));
  if (size < 0) {
    const errno = native().koffi.errno();
    if (errno === ENODATA) return undefined;
    throw new SyscallError("lgetxattr", errno, `"${path}" (${name})`);
  }
  return Buffer.from(buffer.subarray(0, size));
}

/** The names of `path`'s extended attributes (not following a symlink). */
export function listXattrs(path: string): string[] {
  const buffer = xattrScratch();
  const size = check(native().llistxattr(path, buffer, buffer.byteLength), "llistxattr", `"${path}"`);
  if (size === 0) return [];
  return buffer.subarray(0, size).toString("latin1").split("\0").filter((n) => n !== "");
}

/**
 * The buffer xattr calls fill: 64 KiB, the kernel's limit for a value and for a name list. One
 * for the process, as the calls are synchronous; a layer diff makes one call per file, and
 * zeroing a fresh 64 KiB each time cost more than the syscall.
 */
let scratch: Buffer | undefined;
function xattrScratch(): Buffer {
  scratch ??= Buffer.allocUnsafe(65536);
  return scratch;
}
