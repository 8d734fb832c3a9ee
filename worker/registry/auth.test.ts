import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pushOciLayout, startRegistry, type RunningRegistry } from "../../test/harness/registry.js";
import { writeTestImage, type TestImage } from "../../test/harness/test-image.js";
import { startTokenServer, type TokenServer } from "../../test/harness/token-server.js";
import { ContentStore } from "../content/content-store.js";
import { parseAuthenticate } from "./auth.js";
import { RegistryClient } from "./client.js";
import { staticCredentials } from "./credentials.js";
import { RegistryError } from "./errors.js";
import { pullBlobs } from "./pull.js";

const amd64 = { os: "linux", architecture: "amd64" };
const noRetry = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
const account = { user: "kiln", password: "s3cret pass:word" };

let dir: string;
let image: TestImage;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-registry-auth-"));
  image = await writeTestImage(join(dir, "layout"), { ref: "private:v1" });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parseAuthenticate()", () => {
  it("reads a Bearer challenge with quoted parameters containing commas", () => {
    expect(parseAuthenticate('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" } },
    ]);
  });

  it("reads several challenges and escaped quotes", () => {
    expect(parseAuthenticate('Basic realm="say \\"hi\\"", Bearer realm=https://t.example/token')).toEqual([
      { scheme: "basic", params: { realm: 'say "hi"' } },
      { scheme: "bearer", params: { realm: "https://t.example/token" } },
    ]);
  });
});

describe("Basic auth against docker-registry with htpasswd", () => {
  let registry: RunningRegistry;
  let home: string;
  const saved = { HOME: process.env["HOME"], DOCKER_CONFIG: process.env["DOCKER_CONFIG"] };

  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: account });
    await pushOciLayout(join(dir, "layout"), "private:v1", registry.host, { credentials: account });
  });
  afterAll(async () => {
    await registry?.stop();
  });
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), "kiln-home-"));
    process.env["HOME"] = home;
    delete process.env["DOCKER_CONFIG"];
  });
  afterEach(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await rm(home, { recursive: true, force: true });
  });

  async function writeDockerConfig(auths: Record<string, unknown>): Promise<void> {
    await mkdir(join(home, ".docker"));
    await writeFile(join(home, ".docker", "config.json"), JSON.stringify({ auths }));
  }

  it("pulls with credentials from $HOME/.docker/config.json (base64 auth)", async () => {
    await writeDockerConfig({ [registry.host]: { auth: Buffer.from(`${account.user}:${account.password}`).toString("base64") } });
    const client = new RegistryClient({ retry: noRetry });
    const resolved = await client.resolve(`${registry.host}/private:v1`, amd64);
    expect(resolved.manifestDigest).toBe(image.top.digest);
    const content = await ContentStore.open(join(home, "content"));
    await client.pullBlob(`${registry.host}/private:v1`, image.images[0]!.layers[0]!, content);
    expect(await content.has(image.images[0]!.layers[0]!.digest)).toBe(true);
  });

  it("pulls with username and password under a URL key in config.json", async () => {
    await writeDockerConfig({ [`http://${registry.host}/v2/`]: { username: account.user, password: account.password } });
    const resolved = await new RegistryClient({ retry: noRetry }).resolve(`${registry.host}/private:v1`, amd64);
    expect(resolved.manifestDigest).toBe(image.top.digest);
  });

  it("fails without credentials, saying that none were found and where to put them", async () => {
    const error = await new RegistryClient({ retry: noRetry }).resolve(`${registry.host}/private:v1`, amd64).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_UNAUTHORIZED");
    expect((error as RegistryError).retryable).toBe(false);
    expect((error as Error).message).toContain(`the registry "${registry.host}" requires authentication and kiln has no credentials for it`);
    expect((error as Error).message).toContain("~/.docker/config.json");
  });

  it("fails with the registry's diagnostics when the password is wrong", async () => {
    const client = new RegistryClient({ retry: noRetry, credentials: staticCredentials({ [registry.host]: { username: account.user, password: "wrong" } }) });
    const error = await client.resolve(`${registry.host}/private:v1`, amd64).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_UNAUTHORIZED");
    expect((error as RegistryError).status).toBe(401);
    expect((error as RegistryError).diagnostics.map((d) => d.code)).toContain("UNAUTHORIZED");
  });
});

describe("Bearer token flow against docker-registry with token auth", () => {
  let tokens: TokenServer;
  let registry: RunningRegistry;

  beforeAll(async () => {
    tokens = await startTokenServer(account);
    registry = await startRegistry({ tokenAuth: tokens.registryAuth });
    await pushOciLayout(join(dir, "layout"), "private:v1", registry.host, { credentials: account });
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it("gets a pull token from the realm with Basic credentials and reuses it for the repository", async () => {
    const client = new RegistryClient({ retry: noRetry, credentials: staticCredentials({ [registry.host]: { username: account.user, password: account.password } }) });
    tokens.requests.length = 0;
    const resolved = await client.resolve(`${registry.host}/private:v1`, amd64);
    const content = await ContentStore.open(join(dir, "bearer-content"));
    await client.pullBlob(`${registry.host}/private:v1`, image.images[0]!.layers[0]!, content);
    expect(resolved.manifestDigest).toBe(image.top.digest);
    expect(await content.has(image.images[0]!.layers[0]!.digest)).toBe(true);
    // Manifest, config and layer requests all went through one token.
    expect(tokens.requests).toEqual([{ scopes: ["repository:private:pull"], user: "kiln" }]);
  });

  it("shares one token request among parallel layer downloads that meet the same challenge", async () => {
    const layered = await writeTestImage(join(dir, "layout"), {
      ref: "layered:v1",
      layers: [[{ path: "a", content: "a" }], [{ path: "b", content: "b" }], [{ path: "c", content: "c" }]],
    });
    await pushOciLayout(join(dir, "layout"), "layered:v1", registry.host, { credentials: account });
    const client = new RegistryClient({ retry: noRetry, credentials: staticCredentials({ [registry.host]: { username: account.user, password: account.password } }) });
    tokens.requests.length = 0;
    const content = await ContentStore.open(join(dir, "bearer-parallel"));
    const pulled = await pullBlobs(client, `${registry.host}/layered:v1`, layered.images[0]!.layers, content, { concurrency: 3 });
    expect(pulled).toHaveLength(3);
    expect(tokens.requests).toEqual([{ scopes: ["repository:layered:pull"], user: "kiln" }]);
  });

  it("fails when the token server refuses the credentials", async () => {
    const client = new RegistryClient({ retry: noRetry, credentials: staticCredentials({ [registry.host]: { username: account.user, password: "wrong" } }) });
    const error = await client.resolve(`${registry.host}/private:v1`, amd64).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_UNAUTHORIZED");
    expect((error as Error).message).toContain(`Cannot get a token for "${registry.host}" (scope "repository:private:pull") from "${tokens.realm}": the token server refused the credentials of user "kiln" (HTTP 401)`);
    expect((error as RegistryError).diagnostics.map((d) => d.code)).toEqual(["UNAUTHORIZED"]);
  });

  it("fails anonymously when the token server gives no anonymous tokens", async () => {
    const client = new RegistryClient({ retry: noRetry, credentials: staticCredentials({}) });
    const error = await client.resolve(`${registry.host}/private:v1`, amd64).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("KILN_REGISTRY_UNAUTHORIZED");
    expect((error as RegistryError).status).toBe(401);
    expect((error as Error).message).toContain("the token server refused anonymous access; add credentials for it to ~/.docker/config.json");
  });
});

describe("Bearer token flow with anonymous pull tokens (as Docker Hub gives)", () => {
  it("pulls without credentials, asking the token server anonymously", async () => {
    const tokens = await startTokenServer({ ...account, anonymous: true });
    const registry = await startRegistry({ tokenAuth: tokens.registryAuth });
    try {
      await pushOciLayout(join(dir, "layout"), "private:v1", registry.host, { target: "public:v1", credentials: account });
      tokens.requests.length = 0;
      const resolved = await new RegistryClient({ retry: noRetry, credentials: staticCredentials({}) }).resolve(`${registry.host}/public:v1`, amd64);
      expect(resolved.manifestDigest).toBe(image.top.digest);
      expect(tokens.requests).toEqual([{ scopes: ["repository:public:pull"], user: null }]);
    } finally {
      await registry.stop();
      await tokens.stop();
    }
  });
});
