import { execFile } from "node:child_process";
import { chmod, readFile, symlink, unlink, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { encodeMessage, readFrames, type Message, type SyncEntry } from "../../cli/daemon/protocol.js";
import { createScratch, REPO, runKiln, type Scratch } from "../harness/kiln.js";
import { startDaemon, type DaemonProcess } from "./daemon-process.js";

const execFileAsync = promisify(execFile);
const registry = inject("registry");

/** The result metadata a build wrote with --metadata-file. */
async function metadata(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
}

describe("kiln serve: the context travels incrementally", () => {
  let scratch: Scratch;
  let daemon: DaemonProcess;
  let context: string;
  beforeAll(async () => {
    scratch = await createScratch();
    daemon = await startDaemon(scratch.root, join(scratch.dir, "run/kiln.sock"));
    context = await scratch.context("app", {
      Dockerfile: "FROM scratch\nCOPY . /\n",
      ".dockerignore": "*.log\n",
      "big.bin": "b".repeat(200_000),
      "small.txt": "small\n",
      "script.sh": "echo hi\n",
      "gone.txt": "to be deleted\n",
      "ignored.log": "never travels",
    });
    await symlink("small.txt", join(context, "link"));
  });
  afterAll(async () => {
    await daemon.stop();
    await scratch.dispose();
  });

  test("a rebuild sends only the changed file; deletions, mode changes and symlink retargets reach the image; stdout is the client's", async () => {
    const m1 = join(scratch.dir, "m1.json");
    const first = await runKiln(scratch.root, ["--addr", daemon.addr, "build", "--progress", "plain", "--metadata-file", m1, "-t", "sync:1", context]);
    expect(first.code, first.stderr).toBe(0);
    // Dockerfile twice (in the context and beside it), .dockerignore, big.bin, small.txt, script.sh, gone.txt; not ignored.log.
    expect(await metadata(m1)).toMatchObject({ "kiln.daemon.sync.files": "7" });
    expect(Number((await metadata(m1))["kiln.daemon.sync.bytes"])).toBeGreaterThan(200_000);

    await writeFile(join(context, "small.txt"), "small, and changed\n");
    await unlink(join(context, "gone.txt"));
    await chmod(join(context, "script.sh"), 0o755);
    await unlink(join(context, "link"));
    await symlink("big.bin", join(context, "link"));
    await writeFile(join(context, "ignored.log"), "changed, and still never travels");

    // `-o type=tar,dest=-` through the daemon: the tar arrives on this client's stdout.
    const m2 = join(scratch.dir, "m2.json");
    const kiln = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, "bin/kiln"))}`;
    const { stdout: listing } = await execFileAsync("bash", [
      "-c",
      `set -o pipefail; ${kiln} --root ${JSON.stringify(scratch.root)} --addr ${JSON.stringify(daemon.addr)} build --progress plain --metadata-file ${JSON.stringify(m2)} -o type=tar,dest=- ${JSON.stringify(context)} | tar -tvf -`,
    ]);
    const second = await metadata(m2);
    expect(second["kiln.daemon.sync.files"]).toBe("1");
    expect(second["kiln.daemon.sync.bytes"]).toBe(String("small, and changed\n".length));
    expect(listing).toMatch(/^-rwxr-xr-x \S+ +8 .* (\.\/)?script\.sh$/m);
    expect(listing).toMatch(/^l\S+ .* (\.\/)?link -> big\.bin$/m);
    expect(listing).toMatch(/ (\.\/)?small\.txt$/m);
    expect(listing).not.toMatch(/gone\.txt/);
    expect(listing).not.toMatch(/ignored\.log/);
    expect(daemon.log()).toMatch(/synced 1 files \(19 bytes\), removed 2/);

    // Nothing changed: nothing travels, and the image is the one a local build makes (the same
    // SOURCE_DATE_EPOCH, so that creation times agree).
    const epoch = ["--build-arg", "SOURCE_DATE_EPOCH=1000"];
    const m3 = join(scratch.dir, "m3.json");
    const third = await runKiln(scratch.root, ["--addr", daemon.addr, "build", "--progress", "plain", ...epoch, "--metadata-file", m3, "-t", "sync:2", context]);
    expect(third.code, third.stderr).toBe(0);
    expect(await metadata(m3)).toMatchObject({ "kiln.daemon.sync.files": "0", "kiln.daemon.sync.bytes": "0" });
    const local = join(scratch.dir, "local.json");
    const localRun = await runKiln(join(scratch.dir, "local-root"), ["build", "--progress", "plain", ...epoch, "--metadata-file", local, "-t", "sync:2", context]);
    expect(localRun.code, localRun.stderr).toBe(0);
    expect((await metadata(m3))["containerimage.digest"]).toBe((await metadata(local))["containerimage.digest"]);
  });

  test("two builds of one context at once each get a copy of their own", async () => {
    const shared = await scratch.context("shared", {
      Dockerfile: `FROM ${registry}/busybox:latest\nCOPY . /ctx\nRUN cat /ctx/id.txt && sleep 2\n`,
      "id.txt": "shared-context\n",
    });
    const runs = await Promise.all([0, 1].map(() => runKiln(scratch.root, ["--addr", daemon.addr, "build", "--progress", "plain", "--no-cache", shared])));
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/#\d+ [\d.]+ shared-context/);
    }
  });

  test("a listing entry that escapes the sync directory is refused", async () => {
    const escaping: SyncEntry[] = [
      { path: "context", kind: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeNs: "0" },
      { path: "context/../../../escaped", kind: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtimeNs: "0" },
    ];
    const socket = connect(daemon.addr.slice("unix://".length));
    await new Promise<void>((r, j) => socket.once("connect", r).once("error", j));
    const build: Message = { type: "build", id: "escape-test", options: { context: "context", file: "dockerfile/Dockerfile" }, sync: { key: "escape-test" } };
    for (const message of [build, { type: "sync.entries", entries: escaping }, { type: "sync.listed" }] as const satisfies readonly Message[]) socket.write(encodeMessage(message));
    const replies: Message[] = [];
    for await (const frame of readFrames(socket)) if (frame.kind === "message") replies.push(frame.message);
    socket.destroy();
    expect(replies).toEqual([expect.objectContaining({ type: "error", code: "KILN_CONTEXT_ESCAPE", message: expect.stringMatching(/"context\/\.\.\/\.\.\/\.\.\/escaped"/) })]);
  });

  test("a symlink in the kept copy cannot be written through by a later listing", async () => {
    const socket = connect(daemon.addr.slice("unix://".length));
    await new Promise<void>((r, j) => socket.once("connect", r).once("error", j));
    const entries: SyncEntry[] = [
      { path: "context", kind: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeNs: "0" },
      { path: "context/l", kind: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, mtimeNs: "0", target: scratch.dir },
      { path: "context/l/through", kind: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtimeNs: "0" },
    ];
    const build: Message = { type: "build", id: "symlink-test", options: { context: "context", file: "dockerfile/Dockerfile" }, sync: { key: "symlink-test" } };
    for (const message of [build, { type: "sync.entries", entries }, { type: "sync.listed" }] as const satisfies readonly Message[]) socket.write(encodeMessage(message));
    const replies: Message[] = [];
    for await (const frame of readFrames(socket)) if (frame.kind === "message") replies.push(frame.message);
    socket.destroy();
    expect(replies).toEqual([expect.objectContaining({ type: "error", code: "KILN_CONTEXT_ESCAPE", message: expect.stringMatching(/below the symlink "context\/l"/) })]);
    await expect(readFile(join(scratch.dir, "through"))).rejects.toThrow(/ENOENT/);
  });
});
