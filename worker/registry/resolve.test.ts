import { describe, expect, it } from "vitest";
import { sha256 } from "../../solver/llb/index.js";
import { MediaTypes, type Descriptor, type ImageIndex } from "../oci/index.js";
import { parseManifestDocument, PlatformNotFoundError, selectManifest } from "./resolve.js";

function entry(name: string, platform?: Descriptor["platform"], mediaType: string = MediaTypes.ociManifest): Descriptor {
  return { mediaType, digest: sha256(name), size: 1, ...(platform === undefined ? {} : { platform }) };
}

const index = (manifests: Descriptor[]): ImageIndex => ({ schemaVersion: 2, manifests });

describe("selectManifest()", () => {
  it("matches after normalising both sides (arm64/v8 is arm64, x86_64 is amd64)", () => {
    const list = index([entry("amd"), entry("arm", { os: "linux", architecture: "arm64", variant: "v8" })]);
    expect(selectManifest(list, { os: "linux", architecture: "aarch64" }, "r").digest).toBe(sha256("arm"));
    const amd = index([entry("x", { os: "linux", architecture: "amd64" })]);
    expect(selectManifest(amd, { os: "linux", architecture: "x86_64" }, "r").digest).toBe(sha256("x"));
  });

  it("runs the highest lower arm variant when the exact one is missing", () => {
    const list = index([entry("v5", { os: "linux", architecture: "arm", variant: "v5" }), entry("v6", { os: "linux", architecture: "arm", variant: "v6" })]);
    expect(selectManifest(list, { os: "linux", architecture: "arm", variant: "v7" }, "r").digest).toBe(sha256("v6"));
    expect(() => selectManifest(list, { os: "linux", architecture: "arm", variant: "v4" }, "r")).toThrow(PlatformNotFoundError);
  });

  it("skips attestation manifests and nested indexes", () => {
    const list = index([
      entry("att", { os: "unknown", architecture: "unknown" }),
      entry("nested", { os: "linux", architecture: "amd64" }, MediaTypes.ociIndex),
      entry("real", { os: "linux", architecture: "amd64" }),
    ]);
    expect(selectManifest(list, { os: "linux", architecture: "amd64" }, "r").digest).toBe(sha256("real"));
  });

  it("takes the only manifest of an index that names no platforms", () => {
    expect(selectManifest(index([entry("only")]), { os: "linux", architecture: "riscv64" }, "r").digest).toBe(sha256("only"));
  });

  it("lists what the index has when nothing matches, without attestations", () => {
    const list = index([entry("a", { os: "linux", architecture: "amd64" }), entry("att", { os: "unknown", architecture: "unknown" }), entry("w", { os: "windows", architecture: "amd64" })]);
    expect(() => selectManifest(list, { os: "linux", architecture: "ppc64le" }, "example.com/app:1")).toThrow(
      'Cannot use image "example.com/app:1" for platform "linux/ppc64le": it has "linux/amd64", "windows/amd64"',
    );
  });
});

describe("parseManifestDocument()", () => {
  const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

  it("tells an index from a manifest by media type, header or shape", () => {
    expect(parseManifestDocument(bytes({ schemaVersion: 2, mediaType: MediaTypes.dockerManifestList, manifests: [] }), undefined, "m").kind).toBe("index");
    expect(parseManifestDocument(bytes({ schemaVersion: 2, manifests: [] }), MediaTypes.ociIndex, "m").kind).toBe("index");
    expect(parseManifestDocument(bytes({ schemaVersion: 2, config: {}, layers: [] }), "application/json", "m").kind).toBe("manifest");
  });

  it("refuses Docker schema 1 and documents that contradict their media type", () => {
    expect(() => parseManifestDocument(bytes({ schemaVersion: 1, fsLayers: [] }), undefined, 'manifest "r"')).toThrow(
      'Cannot read manifest "r": Docker schema 1 manifests are not supported',
    );
    expect(() => parseManifestDocument(bytes({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, manifests: [] }), undefined, "m")).toThrow(
      'it says "application/vnd.oci.image.manifest.v1+json" but has no "config" and "layers"',
    );
  });
});
