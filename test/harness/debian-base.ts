import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { startAptProxy, type AptProxy } from "../../bench/src/apt-proxy.js";
import { REPO } from "./kiln.js";

const execFileAsync = promisify(execFile);

/** Where the debootstrapped base is kept between test runs (outside the repository and any temp dir). */
export const DEBIAN_CACHE = "/var/cache/kiln-test";

/**
 * A loopback forwarder to this machine's Debian mirror (bench/src/apt-proxy.ts): debootstrap and
 * `apt-get` in a RUN use `http://127.0.0.1:PORT/`, so the mirror's address is read from apt's
 * sources at run time and never written into any file.
 */
export function startMirror(): Promise<AptProxy> {
  return startAptProxy();
}

/**
 * The path of a Debian bookworm minbase root filesystem tar (scripts/make-debian-rootfs.sh),
 * made with debootstrap through `mirror` on first use and kept in DEBIAN_CACHE, so that only the
 * first run on a machine pays for debootstrap (about a minute or two).
 */
export async function debianBaseTar(mirror: AptProxy): Promise<string> {
  const tar = join(DEBIAN_CACHE, "debian-bookworm.tar");
  if (existsSync(tar)) return tar;
  mkdirSync(DEBIAN_CACHE, { recursive: true, mode: 0o755 });
  await execFileAsync("bash", [join(REPO, "scripts/make-debian-rootfs.sh"), tar, `http://127.0.0.1:${mirror.port}/`], { maxBuffer: 1 << 24 });
  return tar;
}
