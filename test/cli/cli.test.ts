import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, REPO, runKiln, type KilnRun, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

describe("kiln CLI", () => {
  let scratch: Scratch;
  let context: string;
  beforeAll(async () => {
    scratch = await createScratch();
    context = await scratch.context("app", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS base`,
        "ARG GREETING=hi",
        "RUN echo $GREETING > /greeting",
        "FROM base AS app",
        "COPY file.txt /file.txt",
        "RUN --network=none cat /file.txt",
        "",
      ].join("\n"),
      "file.txt": "from the context\n",
      "other/Alt.Dockerfile": `FROM ${registry}/busybox:latest\nRUN echo alt\n`,
    });
  });
  afterAll(async () => {
    await scratch.dispose();
  });

  test("docker-style and buildctl-style flags give the same serialized definition", async () => {
    const docker = await runKiln(scratch.root, [
      "debug", "dump-llb", "-f", join(context, "other/Alt.Dockerfile"), "--build-arg", "GREETING=hello", "--target", "0", "--network", "host", context,
    ]);
    const buildctl = await runKiln(scratch.root, [
      "debug", "dump-llb", "--frontend", "dockerfile.v0", "--local", `context=${context}`, "--local", `dockerfile=${join(context, "other")}`,
      "--opt", "filename=Alt.Dockerfile", "--opt", "build-arg:GREETING=hello", "--opt", "target=0", "--opt", "force-network-mode=host",
    ]);
    expect(docker.code, docker.stderr).toBe(0);
    expect(buildctl.code, buildctl.stderr).toBe(0);
    expect(buildctl.stdout).toBe(docker.stdout);
    expect(JSON.parse(docker.stdout)).toMatchObject({ version: 1 });

    const plain = await runKiln(scratch.root, ["debug", "dump-llb", "--build-arg", "GREETING=hello", context]);
    const viaBuildctl = await runKiln(scratch.root, ["debug", "dump-llb", "--frontend", "dockerfile.v0", "--local", `context=${context}`, "--local", `dockerfile=${context}`, "--opt", "build-arg:GREETING=hello"]);
    expect(viaBuildctl.stdout).toBe(plain.stdout);
    expect(plain.stdout).toContain("echo $GREETING");
  });

  test("--network sets the network of RUNs that do not choose one, and dump-llb --dot draws the graph", async () => {
    const host = JSON.parse((await runKiln(scratch.root, ["debug", "dump-llb", "--network", "host", context])).stdout) as { ops: { op: { kind: string; network?: string } }[] };
    expect(host.ops.filter((o) => o.op.kind === "exec").map((o) => o.op.network)).toEqual(["host", "none"]);
    const dot = await runKiln(scratch.root, ["debug", "dump-llb", "--dot", context]);
    expect(dot.code, dot.stderr).toBe(0);
    expect(dot.stdout).toMatch(/^digraph llb \{/);
    expect(dot.stdout).toMatch(/-> .* \[label="0"\];/);
  });

  test("a build exits 0 and writes --iidfile and --metadata-file; --label reaches the image config", async () => {
    const iid = join(scratch.dir, "iid");
    const meta = join(scratch.dir, "meta.json");
    const out = join(scratch.dir, "image");
    const run = await runKiln(scratch.root, [
      "build", "--progress", "plain", "--label", "org.example.team=core", "--iidfile", iid, "--metadata-file", meta,
      "--output", `type=oci,dest=${out},tar=false`, context,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const digest = await readFile(iid, "utf8");
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const metadata = JSON.parse(await readFile(meta, "utf8")) as Record<string, string>;
    expect(metadata["containerimage.config.digest"]).toBe(digest);
    expect(metadata["kiln.build.ref"]).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    const index = JSON.parse(await readFile(join(out, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const blob = (d: string): Promise<string> => readFile(join(out, "blobs/sha256", d.slice("sha256:".length)), "utf8");
    const manifest = JSON.parse(await blob(index.manifests[0]!.digest)) as { config: { digest: string } };
    const config = JSON.parse(await blob(manifest.config.digest)) as { config: { Labels?: Record<string, string> } };
    expect(config.config.Labels).toMatchObject({ "org.example.team": "core" });

    // Every step's full output is kept: `kiln logs BUILD STEP` prints the RUN's.
    const ref = metadata["kiln.build.ref"]!;
    const steps = await runKiln(scratch.root, ["logs", ref]);
    expect(steps.stdout).toMatch(/#\d+ DONE +\[app \d\/\d\] RUN --network=none cat \/file.txt/);
    const output = await runKiln(scratch.root, ["logs", ref, "cat /file.txt"]);
    expect(output.code, output.stderr).toBe(0);
    expect(output.stdout).toBe("from the context\n");
    expect((await runKiln(scratch.root, ["logs"])).stdout).toContain(ref);
  });

  test("a failed build exits 1 and shows the command, exit code, last output and the Dockerfile excerpt", async () => {
    const failing = await scratch.context("failing", {
      Dockerfile: `FROM ${registry}/busybox:latest\nRUN for i in $(seq 1 30); do echo out $i; done; exit 7\n`,
    });
    const run = await runKiln(scratch.root, ["build", "--progress", "plain", failing]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(">>> RUN for i in");
    expect(run.stderr).toMatch(/exit code: 7/);
    const shown = run.stderr.slice(run.stderr.indexOf("Dockerfile:2"));
    expect(shown).toContain("last 20 lines of output:\n  out 11\n");
    expect(shown).toContain("  out 30\n");
    expect(shown).not.toContain("out 10\n");
    expect(run.stderr).toMatch(/full logs: kiln logs \S+/);
  });

  test("usage errors exit 2 and name the problem", async () => {
    const unknownFlag = await runKiln(scratch.root, ["build", "--frobnicate", context]);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("--frobnicate");
    expect((await runKiln(scratch.root, ["build"])).code).toBe(2);
    expect((await runKiln(scratch.root, ["no-such-command"])).code).toBe(2);
    const frontend = await runKiln(scratch.root, ["build", "--frontend", "gateway.v0", "--local", `context=${context}`]);
    expect(frontend.code).toBe(2);
    expect(frontend.stderr).toContain('--frontend "gateway.v0"');
  });

  test("every command answers --help with its usage, and version prints kiln's", async () => {
    const help = await runKiln(scratch.root, ["--help"]);
    expect(help.code).toBe(0);
    const section = help.stdout.slice(help.stdout.indexOf("Commands:"), help.stdout.indexOf("Global options:"));
    const commands = [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((c) => c !== "version");
    expect(commands).toEqual(expect.arrayContaining(["build", "logs", "serve", "debug"]));
    for (const command of commands) {
      const run = await runKiln(scratch.root, [command, "--help"]);
      expect(run.code, command).toBe(0);
      expect(run.stdout, command).toMatch(new RegExp(`^Usage: kiln ${command}`));
    }
    const version = await runKiln(scratch.root, ["version"]);
    expect(version.code).toBe(0);
    const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
    expect(version.stdout).toBe(`kiln ${pkg.version}\n`);
  });

  test("a reader that closes its end of the pipe early does not make kiln fail", async () => {
    // `kiln --help | head -1`: the read end is closed before kiln writes.
    const result = await new Promise<{ code: number | null; stderr: string }>((resolvePromise, reject) => {
      const child = spawn(join(REPO, "bin", "kiln"), ["--root", scratch.root, "build", "--help"], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.destroy();
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolvePromise({ code, stderr }));
    });
    expect(result.stderr).not.toContain("EPIPE");
    expect(result.code).toBe(0);
  });

  test("CONTEXT - reads a bare Dockerfile or a tar of the context from stdin", async () => {
    const bare = await runKiln(scratch.root, ["build", "--progress", "plain", "-"], { stdin: Buffer.from(`FROM ${registry}/busybox:latest\nRUN echo bare-dockerfile\n`) });
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stderr).toContain("bare-dockerfile");

    const tar = await new Promise<Buffer>((resolvePromise, reject) => {
      const child = spawn("tar", ["-C", context, "-czf", "-", "."], { stdio: ["ignore", "pipe", "inherit"] });
      const chunks: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => chunks.push(c));
      child.on("error", reject);
      child.on("close", () => resolvePromise(Buffer.concat(chunks)));
    });
    const fromTar = await runKiln(scratch.root, ["build", "--progress", "plain", "--no-cache", "-f", "other/Alt.Dockerfile", "-"], { stdin: tar });
    expect(fromTar.code, fromTar.stderr).toBe(0);
    expect(fromTar.stderr).toMatch(/#\d+ [\d.]+ alt/);
    const withContext = await runKiln(scratch.root, ["build", "--progress", "plain", "--no-cache", "-"], { stdin: tar });
    expect(withContext.code, withContext.stderr).toBe(0);
    expect(withContext.stderr).toContain("from the context");
  });

  test("rawjson prints one JSON progress event per line, quiet only the digest", async () => {
    const raw = await runKiln(scratch.root, ["build", "--progress", "rawjson", context]);
    expect(raw.code, raw.stderr).toBe(0);
    const events = raw.stderr.trim().split("\n").map((l) => JSON.parse(l) as { type: string });
    expect(events.map((e) => e.type)).toContain("vertex.cached");
    const quiet = await runKiln(scratch.root, ["build", "--progress", "quiet", "-t", "quiet:1", context]);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe("");
    expect(quiet.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
  });
});
