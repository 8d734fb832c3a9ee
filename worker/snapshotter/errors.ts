import { KilnError } from "../../solver/llb/index.js";

/**
 * A snapshot operation that cannot be done: an unknown id, a snapshot in the wrong state (commit of
 * a committed one, a parent that is still active), or a removal while children exist.
 */
export class SnapshotError extends KilnError {
  constructor(
    code: "KILN_SNAPSHOT_NOT_FOUND" | "KILN_SNAPSHOT_STATE" | "KILN_SNAPSHOT_IN_USE",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * A layer tar that kiln refuses to apply: an entry that would escape the root (`..`, an absolute
 * path, a write through a symlink leading out, a hardlink to outside), an entry kiln cannot
 * represent, or a layer whose bytes do not hash to the diff id the image promised.
 */
export class LayerError extends KilnError {
  readonly layer: string;
  readonly entry: string | undefined;
  constructor(
    code: "KILN_LAYER_UNSAFE_ENTRY" | "KILN_LAYER_INVALID" | "KILN_LAYER_DIFFID_MISMATCH" | "KILN_LAYER_UNSUPPORTED",
    layer: string,
    entry: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.layer = layer;
    this.entry = entry;
  }
}
