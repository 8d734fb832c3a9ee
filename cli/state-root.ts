import { homedir } from "node:os";
import { join } from "node:path";

/** kiln's default state root: /var/lib/kiln for root, $XDG_DATA_HOME/kiln (~/.local/share/kiln) otherwise. */
export function defaultStateRoot(): string {
  if (process.env["KILN_ROOT"] !== undefined && process.env["KILN_ROOT"] !== "") return process.env["KILN_ROOT"];
  if (process.getuid?.() === 0) return "/var/lib/kiln";
  const dataHome = process.env["XDG_DATA_HOME"];
  return join(dataHome !== undefined && dataHome !== "" ? dataHome : join(homedir(), ".local", "share"), "kiln");
}
