import { describe, expect, test } from "vitest";
import { contextKey, findNamedContext, namedContexts } from "./named-contexts.js";

describe("named contexts", () => {
  test("contextKey() reduces image references to their familiar form without :latest", () => {
    expect(contextKey("alpine")).toBe("alpine");
    expect(contextKey("alpine:latest")).toBe("alpine");
    expect(contextKey("docker.io/library/alpine:latest")).toBe("alpine");
    expect(contextKey("docker.io/me/app")).toBe("me/app");
    expect(contextKey("alpine:3.20")).toBe("alpine:3.20");
    expect(contextKey("127.0.0.1:5000/busybox:latest")).toBe("127.0.0.1:5000/busybox");
    expect(contextKey("Builder")).toBe("builder");
  });

  test("findNamedContext() matches a FROM reference written another way", () => {
    const contexts = namedContexts({ alpine: { kind: "image", ref: "busybox:latest" }, src: { kind: "local", name: "src" } });
    expect(findNamedContext(contexts, "docker.io/library/alpine")).toEqual({ kind: "image", ref: "busybox:latest" });
    expect(findNamedContext(contexts, "SRC")).toEqual({ kind: "local", name: "src" });
    expect(findNamedContext(contexts, "alpine:3")).toBeUndefined();
  });
});
