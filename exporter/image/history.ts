import type { HistoryEntry } from "../../solver/llb/index.js";

/** The `comment` of a history line kiln had to invent for a layer that had none. */
export const MISSING_HISTORY_COMMENT = "kiln.exporter.image.v0";

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
 * Lines without `created` get `created` (the image's creation time). Pure: returns new lines.
 */
export function normalizeHistory(history: readonly HistoryEntry[], layers: readonly { readonly empty: boolean }[], created: string): HistoryEntry[] {
  const lines = history.map((line) => ({ ...line }));
  let layerIndex = layers.length - 1;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (line.empty_layer === true) continue;
    const layer = layerIndex >= 0 ? layers[layerIndex] : undefined;
    layerIndex--;
    // Paired with a dropped layer, or with no layer at all (extra lines at the bottom).
    if (layer === undefined || layer.empty) lines[i] = { ...line, empty_layer: true };
  }
  // Layers below the oldest paired line have no line: add one each, oldest first.
  const missing: HistoryEntry[] = [];
  for (let i = 0; i <= layerIndex; i++) {
    if (!layers[i]!.empty) missing.push({ created_by: "", comment: MISSING_HISTORY_COMMENT });
  }
  return [...missing, ...lines].map((line) => (line.created === undefined ? { ...line, created } : line));
}

/**
 * SOURCE_DATE_EPOCH for history, as BuildKit does: a line newer than `epoch` (or without a time)
 * is set to `epoch`; older lines, such as most of a base image's, keep their time.
 */
export function clampHistory(history: readonly HistoryEntry[], epoch: string): HistoryEntry[] {
  const limit = Date.parse(epoch);
  return history.map((line) => (line.created === undefined || !(Date.parse(line.created) <= limit) ? { ...line, created: epoch } : line));
}
