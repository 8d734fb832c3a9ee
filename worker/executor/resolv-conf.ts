import { readFileSync } from "node:fs";
import type { NetworkMode } from "../../solver/llb/index.js";

/** Docker's fallback when filtering leaves no nameserver. */
const DEFAULT_NAMESERVERS = ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"];

/**
 * The /etc/resolv.conf a RUN sees, derived from the host's text. Sharing the host's network
 * keeps it as it is (a loopback resolver such as systemd-resolved's stub is reachable there), as
 * BuildKit does for host networking; in a namespace of its own a loopback nameserver points at
 * nothing, so those lines go, and when none is left Docker's public defaults are used.
 */
export function generateResolvConf(hostText: string, network: NetworkMode): string {
  if (network !== "none") return hostText.endsWith("\n") || hostText === "" ? hostText : `${hostText}\n`;
  const lines = hostText.split("\n");
  const kept = lines.filter((line) => {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    return match === null || !isLoopback(match[1] as string);
  });
  const hasNameserver = kept.some((line) => /^\s*nameserver\s+/.test(line));
  const body = kept.join("\n").replace(/\n+$/, "");
  const extra = hasNameserver ? [] : DEFAULT_NAMESERVERS.map((ns) => `nameserver ${ns}`);
  return `${[body, ...extra].filter((s) => s !== "").join("\n")}\n`;
}

/** The host's /etc/resolv.conf text, or "" when it cannot be read. */
export function readHostResolvConf(path = "/etc/resolv.conf"): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function isLoopback(address: string): boolean {
  const bare = address.split("%")[0] ?? address;
  return bare.startsWith("127.") || bare === "::1" || bare === "0:0:0:0:0:0:0:1";
}
