import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chainCredentials, dockerConfigCredentials, normalizeRegistryHost, staticCredentials } from "./credentials.js";

describe("normalizeRegistryHost()", () => {
  it("matches config.json keys by host, whatever scheme or path they carry", () => {
    expect(normalizeRegistryHost("https://index.docker.io/v1/")).toBe("docker.io");
    expect(normalizeRegistryHost("registry-1.docker.io")).toBe("docker.io");
    expect(normalizeRegistryHost("http://127.0.0.1:5000/v2/")).toBe("127.0.0.1:5000");
    expect(normalizeRegistryHost("Registry.Example:443")).toBe("registry.example:443");
  });
});

describe("dockerConfigCredentials()", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-docker-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds Docker Hub credentials stored under the legacy index URL", async () => {
    await writeFile(join(dir, "config.json"), JSON.stringify({ auths: { "https://index.docker.io/v1/": { auth: Buffer.from("me:pa:ss").toString("base64") } } }));
    expect(await dockerConfigCredentials({ configDir: dir })("docker.io")).toEqual({ username: "me", password: "pa:ss" });
    expect(await dockerConfigCredentials({ configDir: dir })("quay.io")).toBeUndefined();
  });

  it("is anonymous when there is no config.json", async () => {
    expect(await dockerConfigCredentials({ configDir: join(dir, "missing") })("docker.io")).toBeUndefined();
  });

  it("names the file when config.json is malformed", async () => {
    const bad = await mkdtemp(join(dir, "bad-"));
    await writeFile(join(bad, "config.json"), "{ not json");
    await expect(dockerConfigCredentials({ configDir: bad })("docker.io")).rejects.toThrow(`Cannot read registry credentials from "${join(bad, "config.json")}"`);
  });
});

describe("chainCredentials()", () => {
  it("takes the first lookup that has credentials", async () => {
    const lookup = chainCredentials(staticCredentials({ "a.example": { username: "a", password: "1" } }), staticCredentials({ "a.example": { username: "b", password: "2" }, "b.example": { username: "c", password: "3" } }));
    expect(await lookup("a.example")).toEqual({ username: "a", password: "1" });
    expect(await lookup("b.example")).toEqual({ username: "c", password: "3" });
  });
});
