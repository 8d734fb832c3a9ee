import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { ExportError } from "../errors.js";

/**
 * Parses a SOURCE_DATE_EPOCH value (whole seconds since 1970, as https://reproducible-builds.org
 * defines it); undefined or empty means "not set".
 */
export function parseSourceDateEpoch(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  if (!/^\d+$/.test(value.trim())) {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use SOURCE_DATE_EPOCH "${value}": it must be a whole number of seconds since 1970`);
  }
  return Number(value.trim());
}

/**
 * The creation time of an image as an RFC 3339 string: `epoch` (seconds) when set, else `now`
 * (milliseconds). Whole seconds are written without a fraction, as Go's time marshalling does,
 * so kiln's configs read like BuildKit's.
 */
export function imageTime(epoch: number | undefined, now: number = Date.now()): string {
  if (epoch !== undefined && (!Number.isInteger(epoch) || epoch < 0)) {
    throw new ExportError("KILN_EXPORT_INVALID_OPTION", `Cannot use epoch ${epoch}: it must be a whole number of seconds since 1970`);
  }
  const iso = new Date(epoch === undefined ? now : epoch * 1000).toISOString();
  return iso.replace(/\.000Z$/, "Z");
}

/** pax keys tar-stream writes itself from the header, or that carry times the clamp replaces. */
const PAX_REWRITTEN = new Set(["path", "linkpath", "size", "mtime", "atime", "ctime"]);

/**
 * `rewrite-timestamp`: the same tar with every modification time after `epoch` (seconds) set to
 * `epoch`, as BuildKit does for reproducible layers. Entries, order, owners, modes, link targets,
 * device numbers and other pax records (xattrs) are kept; pax access and change times are dropped.
 * The output is re-encoded by tar-stream, so it is deterministic for a given input. The caller
 * consumes or destroys the returned stream; destroying it stops reading `input`.
 */
export function clampTarTimes(input: Readable, epoch: number): Readable {
  const extract = tar.extract();
  const pack = tar.pack();
  const limit = epoch * 1000;
  extract.on("entry", (header, stream, next) => {
    const pax = header.pax === null || header.pax === undefined ? undefined : keptPax(header.pax as Record<string, string>);
    const mtime = header.mtime.getTime() > limit ? new Date(limit) : header.mtime;
    let called = false;
    const done = (error?: Error | null): void => {
      if (called) return;
      called = true;
      next(error);
    };
    const entry = pack.entry({ ...header, mtime, pax: pax ?? null }, done);
    pipeline(stream, entry).catch((error: unknown) => done(error as Error));
  });
  extract.on("finish", () => pack.finalize());
  pipeline(input, extract).catch((error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))));
  const output = Readable.from(pack, { objectMode: false });
  output.on("close", () => {
    if (!input.destroyed) input.destroy();
  });
  return output;
}

function keptPax(pax: Readonly<Record<string, string>>): Record<string, string> | undefined {
  const kept = Object.fromEntries(Object.entries(pax).filter(([key]) => !PAX_REWRITTEN.has(key)));
  return Object.keys(kept).length === 0 ? undefined : kept;
}
