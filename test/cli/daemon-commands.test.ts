import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createScratch, runKiln, type Scratch } from "../harness/kiln.js";
import { startDaemon, type DaemonProcess } from "./daemon-process.js";

const execFileAsync = promisify(execFile);

/**
 * `kiln --addr` runs images, rmi, du, prune, import, load and logs on the daemon, against its state
 * root: each client here has a state root of its own that stays empty, so anything it lists came
 * from the daemon.
 */
describe("kiln --addr: images, rmi, du, prune, import, load and logs go to the daemon", () => {
  let scratch: Scratch;
  let daemon: DaemonProcess;
  let clientRoot: string;
  let otherRoot: string;
  const client = (args: readonly string[], stdin?: Buffer) => runKiln(clientRoot, ["--addr", daemon.addr, ...args], stdin === undefined ? {} : { stdin });
  beforeAll(async () => {
    scratch = await createScratch();
    clientRoot = join(scratch.dir, "client-root");
    otherRoot = join(scratch.dir, "other-root");
    daemon = await startDaemon(scratch.root, join(scratch.dir, "run/kiln.sock"));
  });
  afterAll(async () => {
    await daemon.stop();
    await scratch.dispose();
  });

  test("import streams a root filesystem directory, stored as a local import of it would be", async () => {
    const rootfs = await scratch.context("rootfs", { "etc/hostname": "imported\n", "bin/tool": "#!/bin/sh\n" });
    const remote = await client(["import", rootfs, "example.com/imported:1"]);
    expect(remote.code, remote.stderr).toBe(0);
    const local = await runKiln(otherRoot, ["import", rootfs, "example.com/imported:1"]);
    expect(local.code, local.stderr).toBe(0);
    expect(remote.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    // The same layer (the image's creation time differs, as between any two imports).
    const diffIds = async (root: string) => {
      const { stdout } = await execFileAsync("skopeo", ["inspect", "--config", `oci:${join(root, "content")}:example.com/imported:1`]);
      return (JSON.parse(stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    };
    expect(await diffIds(scratch.root)).toEqual(await diffIds(otherRoot));
    expect((await client(["images"])).stdout).toMatch(/^example\.com\/imported:1 +sha256:/m);
    expect((await runKiln(clientRoot, ["images"])).stdout).not.toMatch(/imported/);
  });

  test("load streams an archive from a file and from standard input", async () => {
    const context = await scratch.context("archive-src", { Dockerfile: "FROM scratch\nCOPY a /a\n", a: "a\n" });
    const archive = join(scratch.dir, "archive.tar");
    const built = await runKiln(otherRoot, ["build", "--progress", "plain", "-o", `type=oci,dest=${archive},name=example.com/loaded:1`, context]);
    expect(built.code, built.stderr).toBe(0);
    const fromFile = await client(["load", "-i", archive]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toBe("Loaded image: example.com/loaded:1\n");
    const fromStdin = await client(["load"], await readFile(archive));
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout).toBe("Loaded image: example.com/loaded:1\n");
    expect((await client(["images"])).stdout).toMatch(/^example\.com\/loaded:1 +sha256:/m);
    const missing = await client(["load", "-i", join(scratch.dir, "no-such.tar")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Cannot load ".*no-such\.tar": it cannot be read/);
  });

  test("rmi removes a name from the daemon's store, and says so when it has none", async () => {
    const rootfs = await scratch.context("rootfs-rmi", { f: "x" });
    expect((await client(["import", rootfs, "example.com/doomed:1"])).code).toBe(0);
    const removed = await client(["rmi", "example.com/doomed:1"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe("Untagged: example.com/doomed:1\n");
    expect((await client(["images"])).stdout).not.toMatch(/doomed/);
    const again = await client(["rmi", "example.com/doomed:1"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/Cannot remove "example\.com\/doomed:1": no such image/);
  });

  test("logs and du show the daemon's builds and cache, and prune empties it, as buildctl du and prune do", async () => {
    const context = await scratch.context("cached", { Dockerfile: "FROM scratch\nCOPY f /f\n", f: "cached\n" });
    const built = await client(["build", "--progress", "plain", context]);
    expect(built.code, built.stderr).toBe(0);
    // The build's logs are the daemon's.
    const logs = await client(["logs", "last"]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/COPY f \/f/);
    const du = await client(["du", "--format", "json"]);
    expect(du.code, du.stderr).toBe(0);
    const records = JSON.parse(du.stdout) as { description: string }[];
    expect(records.map((r) => r.description)).toContainEqual(expect.stringMatching(/COPY f \/f/));
    expect(JSON.parse((await runKiln(clientRoot, ["du", "--format", "json"])).stdout)).toEqual([]);

    const pruned = await client(["prune", "--all"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/^Removed [1-9]\d* records? and \d+ snapshots?; total reclaimed: /m);
    expect(JSON.parse((await client(["du", "--format", "json"])).stdout)).toEqual([]);
  });

  test("a usage error on the daemon exits 2 with the message", async () => {
    const run = await client(["du", "--no-such-flag"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no-such-flag/);
  });
});
