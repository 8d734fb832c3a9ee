import { spawn } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { delimiter, join } from "node:path";
import { Duplex, PassThrough } from "node:stream";
import { createGunzip } from "node:zlib";
import { assertNever } from "../../solver/llb/index.js";
import { MediaTypes, type LayerCompression } from "../../worker/oci/index.js";
import { ExportError } from "../errors.js";
import { ParallelGzip } from "./parallel-gzip.js";

/** The compression of new layer blobs, validated: the level is in range for the algorithm. */
export interface ResolvedCompression {
  readonly kind: LayerCompression;
  readonly level: number;
}

/**
 * Validates a compression choice. gzip: level 0-9, default 6 (like BuildKit and `gzip -6`);
 * zstd: 1-22, default 3 (zstd's own default; above 19 is zstd's `--ultra` range); uncompressed
 * takes no level. zstd needs the `zstd` program on PATH, because Node 20's zlib has no zstd: the
 * error says so instead of failing mid-export.
 */
export function resolveCompression(kind: LayerCompression = "gzip", level?: number): ResolvedCompression {
  switch (kind) {
    case "gzip":
      return { kind, level: checkLevel(kind, level ?? 6, 0, 9) };
    case "zstd":
      if (findProgram("zstd") === undefined) {
        throw new ExportError(
          "KILN_EXPORT_COMPRESSION_UNAVAILABLE",
          `Cannot compress layers with "zstd": Node ${process.versions.node} has no zstd in zlib and no "zstd" program is on PATH`,
        );
      }
      return { kind, level: checkLevel(kind, level ?? 3, 1, 22) };
    case "uncompressed":
      return { kind, level: 0 };
    default:
      return assertNever(kind);
  }
}

/** The layer media type for a compression, OCI or Docker. Docker has no zstd type; like BuildKit, the OCI one is used. */
export function layerMediaType(kind: LayerCompression, oci: boolean): string {
  switch (kind) {
    case "gzip":
      return oci ? MediaTypes.ociLayerGzip : MediaTypes.dockerLayerGzip;
    case "zstd":
      return MediaTypes.ociLayerZstd;
    case "uncompressed":
      return oci ? MediaTypes.ociLayer : MediaTypes.dockerLayer;
    default:
      return assertNever(kind);
  }
}

/**
 * A fresh compressing stream: uncompressed tar in, blob bytes out. gzip runs block-parallel on
 * libuv's thread pool (ParallelGzip), so one layer uses every core; zstd runs `zstd -T0` in a
 * child process (its multi-threaded output does not depend on the thread count).
 */
export function createCompressor(compression: ResolvedCompression): Duplex {
  switch (compression.kind) {
    case "gzip":
      return new ParallelGzip({ level: compression.level });
    case "zstd":
      return zstdProcess(["-T0", `-${compression.level}`, ...(compression.level > 19 ? ["--ultra"] : [])]);
    case "uncompressed":
      return new PassThrough();
    default:
      return assertNever(compression.kind);
  }
}

/**
 * A fresh decompressing stream for a stored blob of compression `kind`: blob bytes in,
 * uncompressed tar out (gzip through zlib, zstd through `zstd -d`), for converting a layer to
 * another compression (`force-compression`).
 */
export function createDecompressor(kind: LayerCompression): Duplex {
  switch (kind) {
    case "gzip":
      return createGunzip();
    case "zstd":
      if (findProgram("zstd") === undefined) {
        throw new ExportError("KILN_EXPORT_COMPRESSION_UNAVAILABLE", `Cannot decompress a "zstd" layer: Node ${process.versions.node} has no zstd in zlib and no "zstd" program is on PATH`);
      }
      return zstdProcess(["-d"]);
    case "uncompressed":
      return new PassThrough();
    default:
      return assertNever(kind);
  }
}

function zstdProcess(mode: readonly string[]): Duplex {
  const args = ["-q", "-c", "--no-progress", ...mode];
  const child = spawn("zstd", args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr = (stderr + text).slice(-2000)));
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on("error", (error) => duplex.destroy(new ExportError("KILN_EXPORT_COMPRESSION_UNAVAILABLE", `Cannot run "zstd": ${error.message}`, { cause: error })));
  child.on("exit", (code, signal) => {
    if (code !== 0 && !duplex.destroyed) {
      duplex.destroy(new ExportError("KILN_EXPORT_COMPRESSION_UNAVAILABLE", `Cannot compress with "zstd": it exited with ${code ?? signal}: ${stderr.trim()}`));
    }
  });
  duplex.on("close", () => {
    if (child.exitCode === null) child.kill();
  });
  return duplex;
}

function checkLevel(kind: LayerCompression, level: number, min: number, max: number): number {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use compression level ${level} for "${kind}": it must be an integer from ${min} to ${max}`);
  }
  return level;
}

function findProgram(name: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "/usr/bin:/bin").split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
