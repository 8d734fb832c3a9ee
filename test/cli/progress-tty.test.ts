import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { createScratch, REPO, type Scratch } from "../harness/kiln.js";

const registry = inject("registry");

/** A tmux server of this test's own (its own socket), so nothing else's sessions are touched. */
const SOCKET = `kiln-test-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync("tmux", ["-L", SOCKET, ...args], { encoding: "utf8" });

/** Polls the pane until `done(screen)` holds; gives up (returning the last screen) after many polls. */
async function waitForScreen(session: string, done: (screen: string) => boolean): Promise<string> {
  let screen = "";
  for (let i = 0; i < 600; i++) {
    screen = tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session);
    if (done(screen)) return screen;
    await new Promise((r) => setTimeout(r, 200));
  }
  return screen;
}

function startInPane(session: string, root: string, args: string[]): void {
  const command = ["env", "-u", "CI", process.execPath, join(REPO, "bin/kiln"), "--root", root, ...args].map((a) => `'${a}'`).join(" ");
  tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", `${command}; echo EXIT=$?; sleep 600`);
}

describe("the tty progress view", () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await createScratch();
  });
  afterAll(async () => {
    try {
      tmux("kill-server");
    } catch {
      // No session was left.
    }
    await scratch.dispose();
  });

  test("shows a header, each running step with its last output lines, then finished steps and a summary", async () => {
    const context = await scratch.context("tty", {
      Dockerfile: [
        `FROM ${registry}/busybox:latest AS builder`,
        "RUN for i in $(seq 1 40); do echo tick $i; sleep 0.2; done",
        "RUN echo second > /second",
        "",
      ].join("\n"),
    });
    startInPane("build", scratch.root, ["build", "--progress", "auto", "-t", "tty:1", context]);
    const live = await waitForScreen("build", (s) => /=> => # tick 1\d\b/.test(s) || s.includes("EXIT="));
    expect(live).toMatch(/\[\+\] Building \d+\.\ds \(\d+\/\d+\) 1 running, 0 cached/);
    expect(live).toMatch(/=> \[2\/3\] RUN for i in \$\(seq 1 40\); do echo tick \$i; sleep 0\.2; done +\d+\.\ds/);
    expect(live).toMatch(/=> \[1\/3\] FROM .*busybox.* DONE \d+\.\ds/);
    // Only the last few lines of a running step show: the first ticks have scrolled away.
    expect(live).not.toMatch(/=> => # tick 1$/m);

    const end = await waitForScreen("build", (s) => s.includes("EXIT="));
    expect(end).toContain("EXIT=0");
    expect(end).toMatch(/=> \[2\/3\] RUN for i in .* DONE \d+\.\ds/);
    expect(end).toMatch(/=> \[3\/3\] RUN echo second > \/second +DONE \d+\.\ds/);
    expect(end).toMatch(/Built in \d+\.\ds: \d+ steps run, 0 cached/);
    expect(end).toMatch(/image digest: sha256:[0-9a-f]{64}/);
    expect(end).toContain("output: name=tty:1");
    expect(end).toMatch(/full logs: kiln logs \d{8}T\d{6}Z-[0-9a-f]{6}/);
    tmux("kill-session", "-t", "build");

    startInPane("again", scratch.root, ["build", "--progress", "tty", context]);
    const cached = await waitForScreen("again", (s) => s.includes("EXIT="));
    expect(cached).toContain("EXIT=0");
    expect(cached).toMatch(/=> CACHED \[2\/3\] RUN for i in/);
    expect(cached).toMatch(/Built in \d+\.\ds: 0 steps run, 3 cached/);
    tmux("kill-session", "-t", "again");
  });

  test("--progress auto draws plain lines when stderr is not a terminal", async () => {
    const { runKiln } = await import("../harness/kiln.js");
    const context = await scratch.context("auto-plain", { Dockerfile: `FROM ${registry}/busybox:latest\nRUN echo plain-mode\n` });
    const run = await runKiln(scratch.root, ["build", context]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^#\d+ \[2\/2\] RUN echo plain-mode$/m);
    expect(run.stderr).not.toContain("[+] Building");
  });
});
