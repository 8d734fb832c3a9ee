import { execFile } from "node:child_process";
import { chown, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { accounts, runCommand as run } from "../harness/host-accounts.js";
import { REPO } from "../harness/kiln.js";
import { skopeoInspect, unpackOciArchive } from "../harness/oci-tools.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

/** `bin/kiln ARGS` as `user` (runuser), with that user's HOME and no KILN_* variables of ours. */
function kilnAs(user: string, home: string, args: readonly string[]) {
  const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: home, LANG: "C.UTF-8" };
  return run("runuser", ["-u", user, "--", process.execPath, join(REPO, "bin/kiln"), ...args], env);
}

async function uidOf(user: string): Promise<number> {
  return Number((await execFileAsync("id", ["-u", user])).stdout.trim());
}

/** The numeric owner of every entry of every layer blob of an OCI archive (`path uid/gid`). */
async function layerOwners(archive: string, dir: string): Promise<string[]> {
  const layout = join(dir, "owners-layout");
  await mkdir(layout, { recursive: true });
  await execFileAsync("tar", ["-xf", archive, "-C", layout]);
  const lines: string[] = [];
  for (const blob of await readdir(join(layout, "blobs/sha256"))) {
    const listed = await execFileAsync("tar", ["--numeric-owner", "-tvf", join(layout, "blobs/sha256", blob)]).catch(() => undefined);
    if (listed === undefined) continue; // the config and manifest are not tars
    for (const line of listed.stdout.split("\n").filter((l) => l !== "")) {
      const fields = line.split(/\s+/);
      lines.push(`${fields.slice(5).join(" ")} ${fields[1]}`);
    }
  }
  return lines;
}

describe("rootless kiln", () => {
  const user = "kiln-rootless-e2e";
  const noRange = "kiln-nosubid-e2e";
  let dir: string;
  let home: string;

  beforeAll(async () => {
    await accounts("userdel", ["-r", user]);
    await accounts("userdel", ["-r", noRange]);
    // A regular (non-system) user: useradd gives it a subordinate id range in /etc/subuid and /etc/subgid.
    const added = await accounts("useradd", ["--create-home", "--shell", "/bin/sh", user]);
    expect(added.code, added.stderr).toBe(0);
    // A system user: useradd gives it no subordinate ids.
    const addedSystem = await accounts("useradd", ["--system", "--create-home", "--shell", "/bin/sh", noRange]);
    expect(addedSystem.code, addedSystem.stderr).toBe(0);
    home = `/home/${user}`;
    dir = await mkdtemp(join(tmpdir(), "kiln-rootless-"));
    await chown(dir, await uidOf(user), await uidOf(user));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await accounts("userdel", ["-r", user]);
    await accounts("userdel", ["-r", noRange]);
  });

  test("an ordinary user builds with RUN chowning to several uids and COPY, in its own state root, with no daemon", { timeout: 240_000 }, async () => {
    expect(await readFile("/etc/subuid", "utf8")).toContain(`${user}:`);
    const uid = await uidOf(user);
    const context = join(dir, "context");
    await mkdir(context);
    await writeFile(join(context, "hello.txt"), "hello from the context\n");
    await writeFile(
      join(context, "Dockerfile"),
      [
        `FROM ${registry}/busybox:latest`,
        "RUN mkdir /data && echo a > /data/a && echo b > /data/b && echo c > /data/c \\",
        "  && chown 1000:1000 /data/a && chown 65534:65534 /data/b && chown 33:44 /data/c \\",
        "  && test \"$(stat -c %u:%g /data/b)\" = 65534:65534 && id -u > /data/whoami",
        "COPY --chown=2000:3000 hello.txt /hello.txt",
        "",
      ].join("\n"),
    );
    for (const path of [context, join(context, "Dockerfile"), join(context, "hello.txt")]) await chown(path, uid, uid);
    const out = join(dir, "image.tar");
    const root = join(dir, "state");

    const build = await kilnAs(user, home, ["--root", root, "build", "--progress", "plain", "--output", `type=oci,dest=${out}`, context]);
    expect(build.code, build.stderr).toBe(0);

    // Everything kiln wrote is the user's on the host; the ids of the RUN live in its subordinate range.
    const state = await execFileAsync("find", [root, "-maxdepth", "1", "-printf", "%u %p\n"]);
    expect(state.stdout.split("\n").filter((l) => l !== "").every((l) => l.startsWith(`${user} `))).toBe(true);
    expect((await execFileAsync("stat", ["-c", "%u", out])).stdout.trim()).toBe(String(uid));
    // Overlay (with userxattr) works in the user namespace: no fallback to copying snapshots.
    expect(await readdir(join(root, "snapshots"))).toEqual(["overlay"]);

    // An independent client reads the image; its layers carry the ids the RUN and COPY set.
    const inspected = await skopeoInspect(`oci-archive:${out}`);
    expect((inspected["Layers"] as unknown[]).length).toBe(3);
    const owners = await layerOwners(out, dir);
    expect(owners).toEqual(expect.arrayContaining(["data/a 1000/1000", "data/b 65534/65534", "data/c 33/44", "hello.txt 2000/3000"]));
    const bundle = await unpackOciArchive(out, join(dir, "unpacked"));
    expect(await readFile(join(bundle, "rootfs/hello.txt"), "utf8")).toBe("hello from the context\n");
    expect(await readFile(join(bundle, "rootfs/data/whoami"), "utf8")).toBe("0\n");

    // No mount survives the build: the user namespace took them with it.
    const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
    expect(mountinfo).not.toContain(root);

    // When the default garbage collection is due, the build leaves it to a detached process,
    // which runs in the same user namespace and writes its report as the user.
    const aged = new Date(Date.now() - 2 * 3600_000);
    await utimes(join(root, "cache", "gc-stamp"), aged, aged);
    const again = await kilnAs(user, home, ["--root", root, "build", "--progress", "quiet", context]);
    expect(again.code, again.stderr).toBe(0);
    const log = join(root, "cache", "gc.log");
    const deadline = Date.now() + 60_000;
    while (!(await readFile(log, "utf8").catch(() => "")).includes("Removed")) {
      expect(Date.now() < deadline, `no garbage collection report in ${log}`).toBe(true);
      await sleep(100);
    }
    expect((await execFileAsync("stat", ["-c", "%u", log])).stdout.trim()).toBe(String(uid));
    // It ends on its own (the user is deleted afterwards, which a live process would refuse).
    while ((await execFileAsync("pgrep", ["-u", String(uid)]).then(() => true, () => false))) {
      expect(Date.now() < deadline, "the detached garbage collection is still running").toBe(true);
      await sleep(100);
    }
    expect(await readFile("/proc/self/mountinfo", "utf8")).not.toContain(root);
  });

  test("a user without a subordinate id range is told exactly which line to add where", async () => {
    const build = await kilnAs(noRange, `/home/${noRange}`, ["build", join(dir, "context")]);
    expect(build.code).toBe(1);
    const match = /add the line "kiln-nosubid-e2e:(\d+):65536" to \/etc\/subuid and to \/etc\/subgid/.exec(build.stderr);
    expect(match, build.stderr).not.toBeNull();
    expect(build.stderr).toContain(`user "${noRange}"`);
    // The suggested range is free in both files.
    const start = Number(match?.[1]);
    for (const file of ["/etc/subuid", "/etc/subgid"]) {
      for (const line of (await readFile(file, "utf8")).split("\n").filter((l) => l !== "")) {
        const [, s, c] = line.split(":").map(Number) as [number, number, number];
        expect(start + 65536 <= s || s + c <= start, `${line} overlaps`).toBe(true);
      }
    }
  });
});
