import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseOutput } from "./output.js";
import { UsageError } from "./usage-error.js";

describe("parseOutput()", () => {
  it("reads a bare directory as a local output and a bare dash as a tar on standard output", () => {
    expect(parseOutput("out")).toEqual({ type: "local", dest: resolve("out") });
    expect(parseOutput("-")).toEqual({ type: "tar", dest: "-" });
  });

  it("reads push and push-by-digest of an image output, and type=registry as a pushed image", () => {
    expect(parseOutput("type=image,name=r:5000/a:v1,push=true,push-by-digest=true")).toMatchObject({ type: "image", names: ["r:5000/a:v1"], push: true, pushByDigest: true });
    expect(parseOutput("type=registry,name=r:5000/a")).toMatchObject({ type: "image", names: ["r:5000/a"], push: true, pushByDigest: false });
  });

  it("refuses a push without a name and a local output without dest", () => {
    expect(() => parseOutput("type=image,push=true")).toThrow(UsageError);
    expect(() => parseOutput("type=local")).toThrow(/needs dest=DIR/);
  });

  it("keeps tar=false of an OCI output and a dash as the tar output's destination", () => {
    expect(parseOutput("type=oci,dest=d,tar=false")).toMatchObject({ type: "oci", dest: resolve("d"), tar: false, names: [] });
    expect(parseOutput("type=tar,dest=-")).toEqual({ type: "tar", dest: "-" });
  });

  it("reads BuildKit's image exporter options with their defaults, and Docker media types by default for type=docker", () => {
    expect(parseOutput("type=oci,dest=d")).toMatchObject({
      image: { compression: "gzip", compressionLevel: undefined, forceCompression: false, ociMediaTypes: true, rewriteTimestamp: false, annotations: [] },
    });
    expect(parseOutput("type=docker,dest=d")).toMatchObject({ image: { ociMediaTypes: false } });
    expect(parseOutput("type=image,name=a,compression=zstd,compression-level=9,force-compression=true,rewrite-timestamp=true,oci-mediatypes=false")).toMatchObject({
      // zstd has no Docker media type, so it makes an OCI image whatever oci-mediatypes says, as BuildKit does.
      image: { compression: "zstd", compressionLevel: 9, forceCompression: true, ociMediaTypes: true, rewriteTimestamp: true },
    });
    expect(parseOutput("type=image,name=a,oci-mediatypes=false")).toMatchObject({ image: { ociMediaTypes: false } });
  });

  it("reads several names from one quoted name option", () => {
    expect(parseOutput('type=image,"name=r/a:1,r/b:2"')).toMatchObject({ names: ["r/a:1", "r/b:2"] });
  });

  it("reads annotation options of every type, keeping the key's case and a platform", () => {
    const spec = parseOutput("type=oci,dest=d,annotation.org.Title=t,annotation-index.i=1,annotation-manifest-descriptor[linux/arm64].d=2");
    expect(spec.type === "oci" ? spec.image.annotations : []).toEqual([
      { target: "manifest", key: "org.Title", value: "t" },
      { target: "index", key: "i", value: "1" },
      { target: "manifest-descriptor", platform: { os: "linux", architecture: "arm64" }, key: "d", value: "2" },
    ]);
  });

  it("refuses an unknown compression, a level that is not a number and a malformed annotation", () => {
    expect(() => parseOutput("type=oci,dest=d,compression=brotli")).toThrow(/unknown compression "brotli"; choose gzip, zstd or uncompressed/);
    expect(() => parseOutput("type=oci,dest=d,compression-level=high")).toThrow(/compression-level "high" is not a whole number/);
    expect(() => parseOutput("type=oci,dest=d,annotation-bogus.k=v")).toThrow(UsageError);
    expect(() => parseOutput("type=oci,dest=d,annotation-index[linux/amd64].k=v")).toThrow(/only manifest annotations can name a platform/);
  });

  it("keeps unpack as an option without effect, to be warned about", () => {
    expect(parseOutput("type=image,name=a,unpack=true")).toMatchObject({ image: { ignored: ["unpack"] } });
  });
});
