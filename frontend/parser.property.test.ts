import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "./dockerfile.js";
import { FrontendError } from "./errors.js";
import { lowerDockerfile } from "./lower/index.js";
import { createSourceFile } from "./source-file.js";

/** A small seeded PRNG (mulberry32) so every run tries the same inputs and failures reproduce. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIXTURES = new URL("../test/fixtures/parser/", import.meta.url);
const SEEDS = readdirSync(FIXTURES).map((name) => readFileSync(new URL(`${name}/Dockerfile`, FIXTURES), "utf8"));
const PIECES = [
  "FROM ", "RUN ", "COPY ", "ADD ", "ENV ", "ARG ", "LABEL ", "WORKDIR ", "CMD ", "ENTRYPOINT ", "ONBUILD ", "HEALTHCHECK ", "SHELL ",
  "EXPOSE ", "USER ", "VOLUME ", "STOPSIGNAL ", " AS ", "--from=", "--mount=type=", "--platform=", "<<EOF", "<<-'X'", "EOF", "\\", "`",
  "\n", " ", "\t", "#", "# escape=`\n", "# check=error=true\n", "${", "}", "$", ":-", ":?", "'", '"', "[", "]", ",", "=", "\r\n", "\u00e9", "scratch",
];

function mutate(text: string, next: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(next() * 6);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * (out.length + 1));
    const choice = next();
    if (choice < 0.4) out = out.slice(0, at) + PIECES[Math.floor(next() * PIECES.length)] + out.slice(at);
    else if (choice < 0.7) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(next() * 8));
    else if (choice < 0.85) out = out.slice(0, at) + String.fromCharCode(Math.floor(next() * 128)) + out.slice(at);
    else {
      const from = Math.floor(next() * out.length);
      out = out.slice(0, at) + out.slice(from, from + Math.floor(next() * 20)) + out.slice(at);
    }
  }
  return out;
}

function randomDockerfile(next: () => number): string {
  const n = Math.floor(next() * 12);
  let out = "";
  for (let i = 0; i < n; i++) {
    const words = 1 + Math.floor(next() * 5);
    for (let w = 0; w < words; w++) out += PIECES[Math.floor(next() * PIECES.length)];
    out += next() < 0.8 ? "\n" : "";
  }
  return out;
}

const resolveImage = async (ref: string): Promise<{ ref: string; config: never }> => ({
  ref: `example.test/${ref.replace(/[^a-z0-9]/gu, "") || "x"}@sha256:${"3".repeat(64)}`,
  config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } } as never,
});

describe("parseDockerfile() and lowerDockerfile() on random and mutated input", () => {
  it("only ever return a result or throw a positioned FrontendError", async () => {
    const next = random(20240611);
    let lowered = 0;
    let rejected = 0;
    for (let i = 0; i < 1500; i++) {
      const seed = SEEDS[i % SEEDS.length] as string;
      const text = i % 3 === 0 ? randomDockerfile(next) : mutate(seed, next);
      const source = createSourceFile("Dockerfile", text);
      try {
        const dockerfile = parseDockerfile(source);
        await lowerDockerfile(dockerfile, { platform: { os: "linux", architecture: "amd64" }, buildPlatform: { os: "linux", architecture: "amd64" }, resolveImage });
        lowered++;
      } catch (error) {
        rejected++;
        if (!(error instanceof FrontendError)) throw new Error(`input ${JSON.stringify(text)} threw ${String(error)}`, { cause: error });
        if (error.code !== "KILN_STAGE_NOT_FOUND") {
          expect(error.ranges.length, `${error.code} for ${JSON.stringify(text)}`).toBeGreaterThan(0);
        }
      }
    }
    // Both paths must be exercised, or the corpus has stopped testing anything.
    expect(lowered).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});
