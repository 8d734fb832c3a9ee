import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";

/** What the numbers were measured on. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  /** The 1-minute load average when the run started: other work on a shared machine shows here. */
  readonly loadAtStart: number;
}

export function describeMachine(): Machine {
  let os = "unknown";
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? os;
  } catch {
    // keep "unknown"
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os,
    node: process.version,
    loadAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}
