import { describe, expect, test } from "vitest";
import { opCacheDigest, opDigest, parseDefinition, serializeDefinition } from "./definition.js";
import { exec, file, marshal, source } from "./state.js";

function run(base: ReturnType<typeof source>, command: string) {
  return exec({
    meta: { args: ["/bin/sh", "-c", command], env: [], cwd: "/", user: "" },
    mounts: [{ type: "bind", target: "/", input: base, selector: "/", readonly: false, output: true }],
    network: "default",
    security: "sandbox",
  }).outputs[0]!;
}

describe("Definition", () => {
  test("serializeDefinition() gives the same bytes for the same graph, and parseDefinition() reads them back", () => {
    const build = () => marshal(run(source("docker-image://docker.io/library/busybox:latest"), "echo hi"));
    const text = serializeDefinition(build());
    expect(serializeDefinition(build())).toBe(text);
    expect(serializeDefinition(parseDefinition(text))).toBe(text);
  });

  test("equal ops built in two places are one op", () => {
    const a = run(source("docker-image://a"), "true");
    const b = run(source("docker-image://a"), "true");
    expect(a.vertex.digest).toBe(b.vertex.digest);
    expect(marshal(file(a, [{ kind: "copy", source: b, src: "/x", dest: "/y", owner: null, mode: null, followSymlinks: true, dirContentsOnly: true, createDestPath: true, allowWildcard: true, allowEmptyWildcard: true, include: [], exclude: [], attemptUnpack: false, alwaysReplaceExisting: false }])).ops.size).toBe(3);
  });

  test("parseDefinition() refuses an op whose digest does not match its content", () => {
    const text = serializeDefinition(marshal(source("docker-image://a")));
    expect(() => parseDefinition(text.replace("docker-image://a", "docker-image://b"))).toThrow(/does not match its content/);
  });

  test("opCacheDigest() ignores which ops feed an op, opDigest() does not", () => {
    const one = run(source("docker-image://one"), "make");
    const two = run(source("docker-image://two"), "make");
    expect(opDigest(one.vertex.op)).not.toBe(opDigest(two.vertex.op));
    expect(opCacheDigest(one.vertex.op)).toBe(opCacheDigest(two.vertex.op));
    expect(opCacheDigest(run(source("docker-image://one"), "make test").vertex.op)).not.toBe(opCacheDigest(one.vertex.op));
  });

  test("an exec op's proxyEnv is part of opDigest() but not of opCacheDigest(), and leaving it out keeps the old digest", () => {
    const plain = run(source("docker-image://one"), "make").vertex.op;
    if (plain.kind !== "exec") throw new Error("expected an exec op");
    const proxied = { ...plain, meta: { ...plain.meta, proxyEnv: { httpProxy: "http://proxy:3128" } } };
    const other = { ...plain, meta: { ...plain.meta, proxyEnv: { httpProxy: "http://other:8080", noProxy: "localhost" } } };
    expect(opDigest(proxied)).not.toBe(opDigest(plain));
    expect(opDigest(proxied)).not.toBe(opDigest(other));
    expect(opCacheDigest(proxied)).toBe(opCacheDigest(plain));
    expect(opCacheDigest(other)).toBe(opCacheDigest(plain));
  });
});
