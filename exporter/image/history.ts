import type { HistoryEntry } from "../../solver/llb/index.js";

/** The `comment` of a history line kiln had to invent for a layer that had none. */
export const MISSING_HISTORY_COMMENT = "kiln.exporter.image.v0";

/** One layer made for an image, as normalizeHistory pairs it with a history line. */
export interface HistoryLayer {
  /** A diff with no entries: dropped from the image. */
  readonly empty: boolean;
  /** When the layer's snapshot was made (RFC 3339); a cached step's layer keeps its first time. */
  readonly created?: string;
}

/**
 * Makes `history` describe exactly the layers that end up in the image, as BuildKit's
 * normalizeLayersAndHistory does: afterwards the number of lines without `empty_layer` equals
 * the number of non-empty layers, and every line has `created`.
 *
 * `layers` are all layers made for the image, base first, with `empty` set for those that will be
 * dropped (a diff with no entries). Non-empty history lines and layers are paired from the top
 * (the newest end), because the newest lines are the ones this build wrote and knows, while a base
 * image may come with too little or too much history. So:
 * - the line paired with a dropped layer gets `empty_layer: true`;
 * - lines left over at the bottom are marked `empty_layer: true` (BuildKit marks the topmost
 *   extra ones instead: pairing from the top keeps each build line with its own layer);
 * - layers left without a line get one inserted at the bottom with the comment
 *   "kiln.exporter.image.v0" (BuildKit appends at the top, which would shift every build line
 *   onto the wrong layer when a base image lacks history).
 *
 * Times, as BuildKit sets them: a line without `created` that is paired with a layer gets the
 * layer's `created`, the time its snapshot was made, so a fully cached rebuild writes the same
 * config and the image keeps its digest. The other lines without a time (ENV, LABEL...) then take
 * BuildKit's neighbour: the first stretch of them the first time after it, later stretches the
 * time before them. `fallback` (the clock) is used only where no line and no layer has a time.
 * Pure: returns new lines.
 */
export function normalizeHistory(history: readonly HistoryEntry[], layers: readonly HistoryLayer[], fallback: string): HistoryEntry[] {
  const lines = history.map((line) => ({ ...line }));
  let layerIndex = layers.length - 1;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (line.empty_layer === true) continue;
    const layer = layerIndex >= 0 ? layers[layerIndex] : undefined;
    layerIndex--;
    // Paired with a dropped layer, or with no layer at all (extra lines at the bottom).
    if (layer === undefined || layer.empty) lines[i] = { ...line, empty_layer: true };
    else if (line.created === undefined && layer.created !== undefined) lines[i] = { ...line, created: layer.created };
  }
  // Layers below the oldest paired line have no line: add one each, oldest first.
  const missing: HistoryEntry[] = [];
  for (let i = 0; i <= layerIndex; i++) {
    const layer = layers[i]!;
    if (!layer.empty) missing.push({ ...(layer.created === undefined ? {} : { created: layer.created }), created_by: "", comment: MISSING_HISTORY_COMMENT });
  }
  return fillMissingTimes([...missing, ...lines], fallback);
}

/** BuildKit's rule for lines still without a time; see normalizeHistory. */
function fillMissingTimes(lines: readonly HistoryEntry[], fallback: string): HistoryEntry[] {
  const firstGap = lines.findIndex((line) => line.created === undefined);
  if (firstGap < 0) return [...lines];
  let current =
    lines.slice(firstGap).find((line) => line.created !== undefined)?.created ??
    lines.slice(0, firstGap).findLast((line) => line.created !== undefined)?.created ??
    fallback;
  let afterGap = false;
  return lines.map((line) => {
    if (line.created === undefined) {
      afterGap = true;
      return { ...line, created: current };
    }
    if (afterGap) current = line.created;
    return line;
  });
}

/** The config's `created` when no SOURCE_DATE_EPOCH is set: the newest line's time, as BuildKit's. */
export function imageCreated(history: readonly HistoryEntry[], fallback: string): string {
  return history.findLast((line) => line.created !== undefined)?.created ?? fallback;
}

/**
 * SOURCE_DATE_EPOCH for history, as BuildKit does: a line newer than `epoch` (or without a time)
 * is set to `epoch`; older lines, such as most of a base image's, keep their time.
 */
export function clampHistory(history: readonly HistoryEntry[], epoch: string): HistoryEntry[] {
  const limit = Date.parse(epoch);
  return history.map((line) => (line.created === undefined || !(Date.parse(line.created) <= limit) ? { ...line, created: epoch } : line));
}
