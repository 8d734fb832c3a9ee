import { execFileSync } from "node:child_process";

/** The system parts kiln's tests drive for real, and the Debian package each comes from. */
const REQUIRED: readonly { readonly command: string; readonly pkg: string }[] = [
  { command: "runc", pkg: "runc" },
  { command: "newuidmap", pkg: "uidmap" },
  { command: "busybox", pkg: "busybox-static" },
  { command: "docker-registry", pkg: "docker-registry" },
  { command: "skopeo", pkg: "skopeo" },
  { command: "umoci", pkg: "umoci" },
  { command: "unshare", pkg: "util-linux" },
  { command: "openssl", pkg: "openssl" },
  { command: "zstd", pkg: "zstd" },
  { command: "git", pkg: "git" },
  { command: "bzip2", pkg: "bzip2" },
  { command: "xz", pkg: "xz-utils" },
  { command: "dockerd", pkg: "docker.io" },
  { command: "tmux", pkg: "tmux" },
  { command: "debootstrap", pkg: "debootstrap" },
];

/**
 * Throws, naming every missing part and how to install it, unless the machine can run the whole
 * suite: the tests never skip what they cannot run.
 */
export function assertSystemReady(): void {
  const problems: string[] = [];
  for (const { command, pkg } of REQUIRED) {
    try {
      execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    } catch {
      problems.push(`"${command}" is not installed (Debian package ${pkg})`);
    }
  }
  if (process.getuid?.() !== 0) problems.push("the suite runs as root (it creates the ordinary users its rootless tests need)");
  if (problems.length > 0) {
    throw new Error(`Cannot run kiln's tests on this machine:\n  - ${problems.join("\n  - ")}\nRun "bash scripts/setup.sh" as root first.`);
  }
}
