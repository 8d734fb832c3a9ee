import { homedir } from "node:os";
import { join } from "node:path";
import { isRootlessChild } from "../worker/rootless/index.js";

/** kiln's default state root: /var/lib/kiln for root, $XDG_DATA_HOME/kiln (~/.local/share/kiln) otherwise (also rootless kiln inside its user namespace). */
export function defaultStateRoot(): string {
  if (process.env["KILN_ROOT"] !== undefined && process.env["KILN_ROOT"] !== "") return process.env["KILN_ROOT"];
  // Rootless kiln is uid 0 inside its user namespace, but keeps the ordinary user's state root.
  if (process.getuid?.() === 0 && !isRootlessChild()) return "/var/lib/kiln";
  const dataHome = process.env["XDG_DATA_HOME"];
  return join(dataHome !== undefined && dataHome !== "" ? dataHome : join(homedir(), ".local", "share"), "kiln");
}
