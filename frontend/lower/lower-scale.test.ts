import { describe, expect, it } from "vitest";
import { canonicalJson, serializeDefinition, sha256, type ImageSpec } from "../../solver/llb/index.js";
import { parseDockerfile } from "../dockerfile.js";
import { createSourceFile } from "../source-file.js";
import { lowerDockerfile } from "./index.js";

/**
 * A deterministic Dockerfile of `count` instructions over two stages that uses every kind of
 * instruction lowering keeps state for: ARG, ENV (growing the environment), LABEL, EXPOSE, VOLUME,
 * WORKDIR, USER, RUN (whose env lists the whole environment) and COPY, with variable references.
 */
export function largeDockerfile(count: number): string {
  const lines = ["ARG BASE=busybox", "FROM ${BASE} AS builder", "RUN echo build > /out", "FROM ${BASE}:latest"];
  for (let i = 1; lines.length < count; i++) {
    switch (i % 10) {
      case 0: lines.push(`ARG A${i}=value-${i}`); break;
      case 1: lines.push(`ENV E${i}="\${A${i - 1}:-default}-${i}" F${i % 7}=second`); break;
      case 2: lines.push(`LABEL org.example.l${i}="label ${i}"`); break;
      case 3: lines.push(`EXPOSE ${1000 + i}/tcp`); break;
      case 4: lines.push(`ENV PATH_${i}=/opt/p${i}:$PATH`); break;
      case 5: lines.push(`LABEL a${i}=1 b${i % 5}=2`); break;
      case 6: lines.push(`WORKDIR /w/${i % 10}`); break;
      case 7: lines.push(i % 3 === 0 ? `VOLUME /v${i}` : `USER ${i % 3}`); break;
      case 8: lines.push(`RUN echo ${i} > /f${i % 20}`); break;
      default: lines.push(i % 2 === 0 ? `COPY --from=builder /out /o${i}` : `COPY f${i % 4}.txt /c/`); break;
    }
  }
  return `${lines.join("\n")}\n`;
}

async function lowerLarge(count: number) {
  const platform = { os: "linux", architecture: "amd64" };
  const spec: ImageSpec = { architecture: "amd64", os: "linux", config: { Env: ["PATH=/bin", "HOME=/root"], Labels: { base: "yes" } }, rootfs: { type: "layers", diff_ids: [] } };
  const text = largeDockerfile(count);
  const started = performance.now();
  const lowered = await lowerDockerfile(parseDockerfile(createSourceFile("Dockerfile", text)), {
    platform,
    buildPlatform: platform,
    resolveImage: (ref) => Promise.resolve({ ref: `registry.test/${ref}@sha256:${"3".repeat(64)}`, config: spec }),
  });
  return { lowered, ms: performance.now() - started };
}

describe("lowering a large Dockerfile", () => {
  it("gives the same definition and image metadata digests as before lowering was made linear", async () => {
    const { lowered, ms } = await lowerLarge(2000);
    // A printout, not an assertion: the machine is shared, and the benchmark owns the 50 ms target.
    console.log(`parse + lower of 2,000 instructions: ${ms.toFixed(1)} ms (first run, cold JIT)`);
    expect(sha256(serializeDefinition(lowered.definition))).toBe("sha256:9c163f6187318fe3a3da52ad7efaef3cf451d054cc0fc0222a351ef9579c3250");
    expect(sha256(canonicalJson(lowered.image))).toBe("sha256:167e81ead14a89366ca081c40ab81488cccdd146d889033bc463f8f0a331af71");
  });
});
