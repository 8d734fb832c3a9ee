import { execFile } from "node:child_process";
import { chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { AptProxy } from "../../bench/src/apt-proxy.js";
import { debianBaseTar, startMirror } from "../harness/debian-base.js";
import { accounts, runCommand as run } from "../harness/host-accounts.js";
import { mountsUnder, REPO, runKiln } from "../harness/kiln.js";

const execFileAsync = promisify(execFile);

/**
 * The slow test: a real Debian base made with debootstrap (cached in /var/cache/kiln-test after
 * the first run), imported into kiln, then apt-get installs python3-minimal in a RUN (packages
 * owned by several uids, maintainer scripts, apt's _apt sandbox user) and python runs in the next.
 */

function dockerfile(port: number): string {
  return [
    "FROM kiln-test/debian:bookworm",
    `RUN echo "deb http://127.0.0.1:${port}/ bookworm main" > /etc/apt/sources.list`,
    "RUN apt-get update && apt-get install -y --no-install-recommends python3-minimal",
    'RUN python3 -c "print(42)" && test "$(stat -c %U /var/cache/apt/archives/partial)" = _apt',
    "",
  ].join("\n");
}

describe("a Debian base built with debootstrap", () => {
  let mirror: AptProxy;
  let base: string;
  let dir: string;
  const cleanup: string[] = [];

  beforeAll(async () => {
    mirror = await startMirror();
    base = await debianBaseTar(mirror);
    dir = await mkdtemp(join(tmpdir(), "kiln-debian-"));
  }, 900_000);

  afterAll(async () => {
    await mirror.close();
    for (const path of [dir, ...cleanup]) await rm(path, { recursive: true, force: true });
  });

  test("as root: apt-get installs python3-minimal in a RUN and python3 runs in the next", { timeout: 900_000 }, async () => {
    const root = join(dir, "root-state");
    const imported = await runKiln(root, ["import", base, "kiln-test/debian:bookworm"]);
    expect(imported.code, imported.stderr).toBe(0);
    const context = join(dir, "root-context");
    await mkdir(context);
    await writeFile(join(context, "Dockerfile"), dockerfile(mirror.port));
    const build = await runKiln(root, ["build", "--progress", "plain", context]);
    expect(build.code, build.stderr.slice(-4000)).toBe(0);
    expect(build.stderr).toMatch(/Setting up python3-minimal/);
    expect(build.stderr).toMatch(/#\d+ [\d.]+ 42\n/);
    expect(await mountsUnder(root)).toEqual([]);
  });

  describe("rootless", () => {
    const user = "kiln-debian-e2e";

    beforeAll(async () => {
      await accounts("userdel", ["-r", user]);
      const added = await accounts("useradd", ["--create-home", "--shell", "/bin/sh", user]);
      expect(added.code, added.stderr).toBe(0);
    });

    afterAll(async () => {
      await accounts("userdel", ["-r", user]);
    });

    test("as an ordinary user with a subuid range: the same build succeeds", { timeout: 900_000 }, async () => {
      const uid = Number((await execFileAsync("id", ["-u", user])).stdout.trim());
      // Its own temp dir: the root test's is 0700 and root's.
      const work = await mkdtemp(join(tmpdir(), "kiln-debian-rootless-"));
      cleanup.push(work);
      await mkdir(join(work, "context"), { recursive: true });
      await writeFile(join(work, "context/Dockerfile"), dockerfile(mirror.port));
      for (const path of [work, join(work, "context"), join(work, "context/Dockerfile")]) await chown(path, uid, uid);
      const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: `/home/${user}`, LANG: "C.UTF-8" };
      const kiln = (args: readonly string[]) => run("runuser", ["-u", user, "--", process.execPath, join(REPO, "bin/kiln"), "--root", join(work, "state"), ...args], env);
      const imported = await kiln(["import", base, "kiln-test/debian:bookworm"]);
      expect(imported.code, imported.stderr).toBe(0);
      const build = await kiln(["build", "--progress", "plain", join(work, "context")]);
      expect(build.code, build.stderr.slice(-4000)).toBe(0);
      expect(build.stderr).toMatch(/Setting up python3-minimal/);
      expect(build.stderr).toMatch(/#\d+ [\d.]+ 42\n/);
    });
  });
});
