import { KilnError } from "../solver/llb/index.js";

/** Stable codes of exporter failures. */
export type ExportErrorCode =
  | "KILN_EXPORT_COMPRESSION_UNAVAILABLE"
  | "KILN_EXPORT_INVALID_OPTION"
  | "KILN_EXPORT_INVALID_IMAGE"
  | "KILN_IMPORT_INVALID_SOURCE";

/** An image could not be built, written or imported; `cause` keeps the underlying error. */
export class ExportError extends KilnError {
  declare readonly code: ExportErrorCode;

  constructor(code: ExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
