import { describe, expect, it } from "vitest";
import { opCacheDigest, serializeDefinition, type ExecOp, type FileOp, type ImageSpec, type Op, type SourceOp } from "../../solver/llb/index.js";
import { parseDockerfile } from "../dockerfile.js";
import { FrontendError } from "../errors.js";
import { createSourceFile } from "../source-file.js";
import { lowerDockerfile } from "./index.js";
import type { ImageResolver, LoweredBuild, LowerOptions } from "./options.js";

const AMD64 = { os: "linux", architecture: "amd64" } as const;
const PIN = `sha256:${"1".repeat(64)}`;

/** The frontend's input port, played by a table of fixed configs (the resolver is not under test here). */
function fakeResolver(calls: string[] = []): ImageResolver {
  return async (ref) => {
    calls.push(ref);
    if (ref.startsWith("broken")) throw new Error("manifest unknown");
    const spec: ImageSpec = {
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [`sha256:${"2".repeat(64)}`] },
      config: { Env: ["PATH=/usr/bin:/bin", "BASE=1"], Cmd: ["sh"], WorkingDir: "/home", ...(ref === "onbuilder" ? { OnBuild: ["RUN echo triggered"] } : {}) },
      history: [{ created_by: "base layer" }],
    };
    return { ref: `registry.test/${ref}:latest@${PIN}`, config: spec };
  };
}

async function lower(text: string, options: Partial<LowerOptions> = {}): Promise<LoweredBuild> {
  return lowerDockerfile(parseDockerfile(createSourceFile("Dockerfile", text)), {
    platform: AMD64,
    buildPlatform: AMD64,
    resolveImage: fakeResolver(),
    ...options,
  });
}

function ops(build: LoweredBuild): { digest: string; op: Op; name: string | undefined }[] {
  return [...build.definition.ops].map(([digest, op]) => ({ digest, op, name: build.definition.metadata.get(digest)?.name }));
}

function byName(build: LoweredBuild, prefix: string): Op {
  const found = ops(build).find((o) => o.name?.startsWith(prefix));
  if (found === undefined) throw new Error(`no op named ${prefix}: ${ops(build).map((o) => o.name).join(", ")}`);
  return found.op;
}

async function lowerError(text: string, options: Partial<LowerOptions> = {}): Promise<FrontendError> {
  try {
    await lower(text, options);
  } catch (error) {
    if (error instanceof FrontendError) return error;
    throw error;
  }
  throw new Error("expected lowering to fail");
}

const TWO_STAGE = `FROM busybox AS builder
RUN echo hi > /out
FROM busybox
COPY --from=builder /out /hello
CMD ["cat", "/hello"]
`;

describe("lowerDockerfile()", () => {
  it("lowers a two-stage build to image source, exec and file ops with BuildKit's progress names", async () => {
    const build = await lower(TWO_STAGE);
    expect(ops(build).map((o) => o.name)).toEqual([
      `[stage-1 1/2] FROM registry.test/busybox:latest@${PIN}`,
      "[builder 2/2] RUN echo hi > /out",
      "[stage-1 2/2] COPY --from=builder /out /hello",
    ]);
    const run = byName(build, "[builder 2/2] RUN") as ExecOp;
    expect(run.meta).toEqual({ args: ["/bin/sh", "-c", "echo hi > /out"], env: ["PATH=/usr/bin:/bin", "BASE=1"], cwd: "/home", user: "" });
    expect(run.mounts).toEqual([{ type: "bind", target: "/", input: 0, selector: "/", readonly: false, output: 0 }]);
    expect(run.network).toBe("default");
    expect(run.security).toBe("sandbox");
    const copy = byName(build, "[stage-1 2/2] COPY") as FileOp;
    const runDigest = ops(build).find((o) => o.op === run)?.digest;
    expect(copy.inputs.map((i) => i.digest)).toContain(runDigest);
    expect(copy.actions[0]).toMatchObject({ kind: "copy", src: "/out", dest: "/hello", followSymlinks: true, dirContentsOnly: true, allowWildcard: true, createDestPath: true });
    expect(build.definition.head?.digest).toBe(ops(build).find((o) => o.op === copy)?.digest);
  });

  it("gives the target's image metadata: base config and history, then one line per instruction", async () => {
    const build = await lower(TWO_STAGE);
    expect(build.image.platform).toEqual(AMD64);
    expect(build.image.config).toEqual({ Env: ["PATH=/usr/bin:/bin", "BASE=1"], Cmd: ["cat", "/hello"], WorkingDir: "/home", ArgsEscaped: true });
    expect(build.image.history).toEqual([
      { created_by: "base layer" },
      { created_by: "COPY /out /hello # buildkit", comment: "buildkit.dockerfile.v0" },
      { created_by: 'CMD ["cat" "/hello"]', comment: "buildkit.dockerfile.v0", empty_layer: true },
    ]);
  });

  it("serializes byte-identically on every run and changes the digest when the Dockerfile changes", async () => {
    const a = serializeDefinition((await lower(TWO_STAGE)).definition);
    const b = serializeDefinition((await lower(TWO_STAGE)).definition);
    const c = serializeDefinition((await lower(TWO_STAGE.replace("echo hi", "echo bye"))).definition);
    expect(a).toBe(b);
    expect((await lower(TWO_STAGE)).definition.head).toEqual((await lower(TWO_STAGE)).definition.head);
    expect(c).not.toBe(a);
  });

  it("attaches each op's instruction range and the Dockerfile to the source map", async () => {
    const build = await lower(TWO_STAGE);
    const runDigest = ops(build).find((o) => o.name?.includes("RUN"))?.digest;
    const locations = build.definition.locations.get(runDigest as never);
    expect(locations?.[0]?.ranges).toEqual([{ start: { line: 2, character: 0 }, end: { line: 2, character: 18 } }]);
    expect(locations?.[0]?.source.name).toBe("Dockerfile");
  });

  it("numbers steps without a stage name when the Dockerfile has one stage, padding to the total's width", async () => {
    const runs = Array.from({ length: 10 }, (_, i) => `RUN echo ${i}`).join("\n");
    const build = await lower(`FROM busybox\n${runs}\n`);
    const names = ops(build).map((o) => o.name);
    expect(names).toContain("[ 1/11] FROM registry.test/busybox:latest@" + PIN);
    expect(names).toContain("[ 2/11] RUN echo 0");
    expect(names).toContain("[11/11] RUN echo 9");
  });

  it("lowers only the stages the target needs: an unused broken stage neither resolves nor fails", async () => {
    const calls: string[] = [];
    const build = await lower(`FROM broken-image AS unused\nENV X=\${NOPE:?required}\nFROM busybox\nRUN true\n`, { resolveImage: fakeResolver(calls) });
    expect(calls).toEqual(["busybox"]);
    expect(build.definition.ops.size).toBe(2);
  });

  it("builds --target by name (case-insensitive) or index, and names the stages when the target is unknown", async () => {
    const text = `FROM busybox AS First\nRUN one\nFROM busybox AS second\nRUN two\n`;
    expect(ops(await lower(text, { target: "FIRST" })).some((o) => o.name === "[first 2/2] RUN one")).toBe(true);
    expect(ops(await lower(text, { target: "0" })).some((o) => o.name === "[first 2/2] RUN one")).toBe(true);
    const error = await lowerError(text, { target: "secnd" });
    expect(error.code).toBe("KILN_STAGE_NOT_FOUND");
    expect(error.hint).toBe('Did you mean "second"?');
  });

  it("rejects COPY --from a later stage or the stage itself, naming the line", async () => {
    const later = await lowerError(`FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n`, { target: "a" });
    expect(later.code).toBe("KILN_STAGE_ORDER");
    expect(later.ranges[0]?.start.line).toBe(2);
    const self = await lowerError(`FROM busybox AS a\nCOPY --from=a /x /x\n`);
    expect(self.code).toBe("KILN_STAGE_CYCLE");
    expect(self.ranges[0]?.start.line).toBe(2);
  });

  it("copies --from an image that is not a stage name", async () => {
    const build = await lower(`FROM scratch\nCOPY --from=alpine /etc/os-release /\n`);
    const sources = ops(build).filter((o) => o.op.kind === "source").map((o) => (o.op as SourceOp).identifier);
    expect(sources).toEqual([`docker-image://registry.test/alpine:latest@${PIN}`]);
  });

  it("expands global ARGs in FROM, re-declared ARGs in stages, and --build-arg overrides", async () => {
    const text = `ARG IMG=busybox\nARG V=global\nFROM \${IMG}\nARG V\nARG W=\${V}-w\nRUN echo $V\n`;
    const build = await lower(text, { buildArgs: { V: "cli" }, resolveImage: fakeResolver() });
    const run = byName(build, "[2/2] RUN") as ExecOp;
    expect(run.meta.env).toEqual(["PATH=/usr/bin:/bin", "BASE=1", "V=cli", "W=cli-w"]);
    expect(build.image.config.Env).toEqual(["PATH=/usr/bin:/bin", "BASE=1"]);
    expect(build.image.history.at(-1)?.created_by).toBe("RUN |2 V=cli W=cli-w /bin/sh -c echo $V # buildkit");
  });

  it("keeps predefined platform args out of a stage until it declares them", async () => {
    const build = await lower(`FROM busybox\nARG TARGETARCH\nENV A=$TARGETARCH B=$BUILDOS\n`);
    expect(build.image.config.Env).toContain("A=amd64");
    expect(build.image.config.Env).toContain("B=");
  });

  it("lets ENTRYPOINT clear an inherited CMD but keep one set in the same stage", async () => {
    expect((await lower(`FROM busybox\nENTRYPOINT ["/app"]\n`)).image.config.Cmd).toBeUndefined();
    expect((await lower(`FROM busybox\nCMD ["x"]\nENTRYPOINT ["/app"]\n`)).image.config.Cmd).toEqual(["x"]);
    expect((await lower(`FROM busybox\nENTRYPOINT /app run\n`)).image.config.Entrypoint).toEqual(["/bin/sh", "-c", "/app run"]);
  });

  it("joins relative WORKDIRs, makes the directory, and resolves COPY destinations against it", async () => {
    const build = await lower(`FROM scratch\nWORKDIR /a\nWORKDIR b\nCOPY x y .\n`);
    expect(build.image.config.WorkingDir).toBe("/a/b");
    const mkdir = byName(build, "[1/3] WORKDIR /a") as FileOp;
    expect(mkdir.actions).toEqual([{ kind: "mkdir", path: "/a", mode: 0o755, makeParents: true, owner: null }]);
    const copy = byName(build, "[3/3] COPY") as FileOp;
    expect(copy.actions.map((a) => (a.kind === "copy" ? [a.src, a.dest] : []))).toEqual([["/x", "/a/b/"], ["/y", "/a/b/"]]);
  });

  it("sets ENV, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL and HEALTHCHECK in the config with empty-layer history", async () => {
    const build = await lower(
      `FROM scratch\nENV A=1 B=\${A}2\nLABEL k=$A\nUSER 1000:1000\nEXPOSE 80 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\nSHELL ["/bin/bash", "-c"]\nHEALTHCHECK --interval=30s CMD true\n`,
    );
    expect(build.image.config).toMatchObject({
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=2"],
      Labels: { k: "1" },
      User: "1000:1000",
      ExposedPorts: { "80/tcp": {}, "53/udp": {} },
      Volumes: { "/data": {} },
      StopSignal: "SIGINT",
      Shell: ["/bin/bash", "-c"],
      Healthcheck: { Test: ["CMD-SHELL", "true"], Interval: 30e9 },
    });
    expect(build.image.history.every((h) => h.empty_layer === true)).toBe(true);
    expect(build.image.history[0]?.created_by).toBe("ENV A=1 B=2");
  });

  it("puts .dockerignore patterns on the shared context source", async () => {
    const build = await lower(`FROM scratch\nCOPY a /\nCOPY b /\n`, { dockerignore: createSourceFile(".dockerignore", "# c\n/node_modules\n!keep\n"), contextName: "ctx" });
    const locals = ops(build).filter((o) => o.op.kind === "source") as { op: SourceOp }[];
    expect(locals.map((o) => o.op)).toEqual([{ kind: "source", identifier: "local://ctx", attrs: { excludepatterns: '["node_modules","!keep"]', sharedkeyhint: "ctx" } }]);
  });

  it("lowers RUN --mount=type=cache and type=bind from a stage", async () => {
    const build = await lower(`FROM busybox AS deps\nFROM busybox\nRUN --mount=type=cache,target=/root/.cache,sharing=locked --mount=from=deps,target=/deps make\n`);
    const run = byName(build, "[stage-1 2/2] RUN") as ExecOp;
    expect(run.mounts.slice(1)).toEqual([
      { type: "cache", target: "/root/.cache", id: "/root/.cache", sharing: "locked", input: null, selector: "/", readonly: false, mode: 0o755, uid: 0, gid: 0 },
      { type: "bind", target: "/deps", input: 0, selector: "/", readonly: true, output: null },
    ]);
  });

  it("runs a heredoc with a shebang as a mounted script, and one without as shell input", async () => {
    const build = await lower(`FROM busybox\nRUN <<EOF\n#!/bin/sh\necho a\nEOF\nRUN <<EOF\necho b\nEOF\n`);
    const execs = ops(build).filter((o) => o.op.kind === "exec").map((o) => (o.op as ExecOp).meta.args);
    expect(execs).toEqual([["/dev/pipes/EOF"], ["/bin/sh", "-c", "echo b\n"]]);
  });

  it("runs ONBUILD triggers of the base image before the stage's instructions", async () => {
    const build = await lower(`FROM onbuilder\nRUN after\n`);
    const execs = ops(build).filter((o) => o.op.kind === "exec").map((o) => (o.op as ExecOp).meta.args.at(-1));
    expect(execs).toEqual(["echo triggered", "after"]);
    expect(build.image.config.OnBuild).toBeUndefined();
  });

  it("reports an expansion error with the instruction's range", async () => {
    const error = await lowerError(`FROM busybox\nENV A=\${NOPE:?required}\n`);
    expect(error.code).toBe("KILN_SHELL_WORDS");
    expect(error.message).toContain("NOPE: required");
    expect(error.ranges[0]?.start.line).toBe(2);
  });

  it("reports an image the resolver cannot find on the FROM line", async () => {
    const error = await lowerError(`FROM busybox\nRUN x\nFROM broken-image\n`);
    expect(error.code).toBe("KILN_IMAGE_RESOLVE");
    expect(error.ranges[0]?.start.line).toBe(3);
    expect(error.message).toBe('Cannot resolve image "broken-image": manifest unknown');
  });

  it("turns warnings into an error with # check=error=true, and drops skipped rules", async () => {
    const text = `FROM busybox\nCMD echo hi\n`;
    expect((await lower(text)).warnings.map((w) => w.rule)).toEqual(["JSONArgsRecommended"]);
    expect((await lower(`# check=skip=JSONArgsRecommended\n${text}`)).warnings).toEqual([]);
    expect((await lowerError(`# check=error=true\n${text}`)).code).toBe("KILN_CHECK_FAILED");
  });
});

describe("proxy build args", () => {
  const text = `FROM busybox\nRUN wget http://example.test/\n`;

  it("reach RUN as the exec op's proxyEnv, not as env, history or cache key, when no ARG declares them", async () => {
    const build = await lower(text, { buildArgs: { HTTP_PROXY: "http://proxy:3128", no_proxy: "localhost", ALL_PROXY: "" } });
    const run = byName(build, "[2/2] RUN") as ExecOp;
    expect(run.meta.proxyEnv).toEqual({ httpProxy: "http://proxy:3128", noProxy: "localhost" });
    expect(run.meta.env.some((e) => /_proxy=/iu.test(e))).toBe(false);
    expect(build.image.history?.at(-1)?.created_by).toBe("RUN /bin/sh -c wget http://example.test/ # buildkit");
    expect(build.image.config.Env?.some((e) => /_proxy=/iu.test(e))).toBe(false);
    const other = byName(await lower(text, { buildArgs: { HTTP_PROXY: "http://elsewhere:8080" } }), "[2/2] RUN");
    const none = byName(await lower(text), "[2/2] RUN");
    expect(opCacheDigest(run)).toBe(opCacheDigest(other));
    expect(opCacheDigest(run)).toBe(opCacheDigest(none));
    expect((none as ExecOp).meta.proxyEnv).toBeUndefined();
  });

  it("are ordinary args once declared with ARG: in env, history and cache key", async () => {
    const declared = `FROM busybox\nARG HTTP_PROXY\nRUN wget http://example.test/\n`;
    const build = await lower(declared, { buildArgs: { HTTP_PROXY: "http://proxy:3128" } });
    const run = byName(build, "[2/2] RUN") as ExecOp;
    expect(run.meta.env).toContain("HTTP_PROXY=http://proxy:3128");
    expect(build.image.history?.at(-1)?.created_by).toBe("RUN |1 HTTP_PROXY=http://proxy:3128 /bin/sh -c wget http://example.test/ # buildkit");
    const other = byName(await lower(declared, { buildArgs: { HTTP_PROXY: "http://elsewhere:8080" } }), "[2/2] RUN");
    expect(opCacheDigest(run)).not.toBe(opCacheDigest(other));
  });
});

describe("SOURCE_DATE_EPOCH", () => {
  it("is visible to ARG SOURCE_DATE_EPOCH in a stage and in the global scope, and is handed to the exporter", async () => {
    const build = await lower(`ARG SOURCE_DATE_EPOCH\nFROM busybox:\${SOURCE_DATE_EPOCH}\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH\n`, {
      buildArgs: { SOURCE_DATE_EPOCH: "1700000000" },
    });
    expect(ops(build).some((o) => o.name?.includes("busybox:1700000000"))).toBe(true);
    expect((byName(build, "[2/2] RUN") as ExecOp).meta.env).toContain("SOURCE_DATE_EPOCH=1700000000");
    expect(build.sourceDateEpoch).toBe(1700000000);
    // Never reported as not consumed; without the build arg the FROM would read "busybox:".
    expect(build.warnings.map((w) => w.rule)).toEqual(["InvalidDefaultArgInFrom"]);
  });

  it("comes from a global ARG default too, and is absent when unset, empty or not a number", async () => {
    expect((await lower(`ARG SOURCE_DATE_EPOCH=42\nFROM busybox\n`)).sourceDateEpoch).toBe(42);
    expect((await lower(`FROM busybox\n`)).sourceDateEpoch).toBeUndefined();
    expect((await lower(`FROM busybox\n`, { buildArgs: { SOURCE_DATE_EPOCH: "" } })).sourceDateEpoch).toBeUndefined();
    expect((await lower(`FROM busybox\n`, { buildArgs: { SOURCE_DATE_EPOCH: "yesterday" } })).sourceDateEpoch).toBeUndefined();
  });
});
