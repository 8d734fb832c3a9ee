import { describe, expect, it } from "vitest";
import { parseCacheExport, parseCacheImport } from "./cache-spec.js";

describe("parseCacheExport()", () => {
  it("reads type=local with its mode and cache-mounts, dest taken from the working directory", () => {
    expect(parseCacheExport("type=local,dest=out,mode=max,cache-mounts=true", "/work")).toEqual({ kind: "local", dest: "/work/out", mode: "max", cacheMounts: true });
  });

  it("defaults to mode=min without cache mounts, and takes a bare reference as type=registry", () => {
    expect(parseCacheExport("127.0.0.1:5000/app:cache")).toEqual({ kind: "registry", ref: "127.0.0.1:5000/app:cache", mode: "min", cacheMounts: false });
    expect(parseCacheExport("type=inline")).toEqual({ kind: "inline" });
  });

  it.each([
    ["type=s3,bucket=b", 'unknown cache type "s3"'],
    ["type=local", "needs dest="],
    ["type=local,dest=d,mode=all", 'not "all"'],
    ["type=registry,ref=r,compression=zstd", 'no option "compression"'],
    ["type=inline,mode=max", "its mode is min"],
    ["type=local,dest=a,dest=b", "given twice"],
  ])("refuses %s, naming the flag", (value, why) => {
    expect(() => parseCacheExport(value)).toThrow(why);
    expect(() => parseCacheExport(value)).toThrow("--cache-to (--export-cache)");
  });
});

describe("parseCacheImport()", () => {
  it("reads type=local,src and type=registry,ref and a bare reference", () => {
    expect(parseCacheImport("type=local,src=c", "/work")).toEqual({ kind: "local", src: "/work/c" });
    expect(parseCacheImport("type=registry,ref=r/x:1")).toEqual({ kind: "registry", ref: "r/x:1" });
    expect(parseCacheImport("r/x:1")).toEqual({ kind: "registry", ref: "r/x:1" });
  });

  it("says how to import an inline cache", () => {
    expect(() => parseCacheImport("type=inline")).toThrow("type=registry,ref=IMAGE");
  });
});
