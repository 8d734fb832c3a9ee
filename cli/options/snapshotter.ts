import type { SnapshotterChoice } from "../api.js";
import { UsageError } from "./usage-error.js";

/** Engine settings a command may override from its own flags (`kiln build --snapshotter`). */
export interface EngineOverrides {
  readonly snapshotter?: SnapshotterChoice;
}

const CHOICES: readonly SnapshotterChoice[] = ["auto", "overlay", "native"];

/** Validates a `--snapshotter` value; throws UsageError naming the choices. */
export function parseSnapshotter(value: string | undefined): SnapshotterChoice {
  if (value === undefined || value === "") throw new UsageError("--snapshotter needs a value: auto, overlay or native");
  if (!(CHOICES as readonly string[]).includes(value)) throw new UsageError(`Cannot use --snapshotter "${value}": choose auto, overlay or native`);
  return value as SnapshotterChoice;
}
