import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, mountsUnder, runKiln, type Scratch } from "../harness/kiln.js";
import { unpackOciArchive } from "../harness/oci-tools.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

/** Every blob of an OCI archive, decompressed when it is gzip. */
async function decompressedBlobs(archive: string, dir: string): Promise<Buffer[]> {
  await execFileAsync("mkdir", ["-p", dir]);
  await execFileAsync("tar", ["-xf", archive, "-C", dir]);
  const blobs: Buffer[] = [];
  for (const name of await readdir(join(dir, "blobs/sha256"))) {
    const bytes = await readFile(join(dir, "blobs/sha256", name));
    blobs.push(bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes);
  }
  return blobs;
}

describe("RUN --mount=type=secret and type=ssh", () => {
  let scratch: Scratch;
  let agent: Server;
  let agentSocket: string;
  beforeAll(async () => {
    scratch = await createScratch();
    agentSocket = join(scratch.dir, "agent.sock");
    agent = createServer((c) => c.end());
    await new Promise<void>((resolve) => agent.listen(agentSocket, resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => agent.close(resolve));
    await scratch.dispose();
  });

  test("a secret reaches the RUN as a file and as env, and no trace of it is in the image, the state root or the output", async () => {
    const fileSecret = `file-secret-${randomBytes(12).toString("hex")}`;
    const envSecret = `env-secret-${randomBytes(12).toString("hex")}`;
    const secretFile = join(scratch.dir, "tok.txt");
    await writeFile(secretFile, fileSecret);
    const context = await scratch.context("secret", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest`,
        "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test -s /run/secrets/tok && sha256sum /run/secrets/tok | cut -d' ' -f1 > /file-hash",
        "RUN --mount=type=secret,id=envtok,env=TOKEN,required=true test -n \"$TOKEN\" && printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /env-hash",
        "RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=33 stat -c '%a %u' /etc/app/token > /target-stat && test ! -e /run/secrets/tok",
        "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /ssh-sock",
        "",
      ].join("\n"),
    });
    const out = join(scratch.dir, "secret.tar");
    const run = await runKiln(
      scratch.root,
      ["build", "--progress", "plain", "--secret", `id=tok,src=${secretFile}`, "--secret", "id=envtok,env=KILN_TEST_TOKEN", "--ssh", `default=${agentSocket}`, "--output", `type=oci,dest=${out}`, context],
      { env: { KILN_TEST_TOKEN: envSecret } },
    );
    expect(run.code, run.stderr).toBe(0);
    const rootfs = join(await unpackOciArchive(out, join(scratch.dir, "secret-unpacked")), "rootfs");
    const sha = (s: string) => createHash("sha256").update(s).digest("hex");
    expect((await readFile(join(rootfs, "file-hash"), "utf8")).trim()).toBe(sha(fileSecret));
    expect((await readFile(join(rootfs, "env-hash"), "utf8")).trim()).toBe(sha(envSecret));
    expect((await readFile(join(rootfs, "target-stat"), "utf8")).trim()).toBe("440 33");
    expect((await readFile(join(rootfs, "ssh-sock"), "utf8")).trim()).toBe("/run/buildkit/ssh_agent.0");
    // The mount points were stubs: not in the image.
    expect(await readdir(join(rootfs, "run")).catch(() => [])).not.toContain("secrets");
    expect(await readdir(join(rootfs, "etc"))).not.toContain("app");

    for (const blob of await decompressedBlobs(out, join(scratch.dir, "secret-blobs"))) {
      expect(blob.includes(fileSecret)).toBe(false);
      expect(blob.includes(envSecret)).toBe(false);
    }
    expect(`${run.stdout}${run.stderr}`).not.toContain(fileSecret);
    expect(`${run.stdout}${run.stderr}`).not.toContain(envSecret);
    // Nothing under the state root (cache records, logs, snapshots, content) holds either value.
    for (const secret of [fileSecret, envSecret]) {
      const grep = await execFileAsync("grep", ["-rl", "--", secret, scratch.root]).then((r) => r.stdout, () => "");
      expect(grep).toBe("");
    }
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });

  test("a required secret the build was not given fails the RUN with its id", async () => {
    const context = await scratch.context("missing", {
      Dockerfile: `FROM ${registry}/busybox:latest\nRUN --mount=type=secret,id=absent,required=true true\n`,
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", context]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Cannot mount secret "absent": the build was given no secret of that id');
    expect(await mountsUnder(scratch.root)).toEqual([]);
  });
});
