import { spawn } from "node:child_process";
import { constants as osConstants, userInfo } from "node:os";
import { assertSubordinateIds, RootlessError, type SubidFiles, type SubidUser } from "./subid.js";

/**
 * Set (to "1") in the environment of the kiln process that runs inside the user namespace, so it
 * does not re-enter again and knows that its uid 0 is an ordinary user's.
 */
export const ROOTLESS_ENV = "KILN_ROOTLESS";

/** Whether this process is the rootless kiln inside its user namespace. */
export function isRootlessChild(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ROOTLESS_ENV] === "1";
}

/** Whether kiln must re-enter itself in a user namespace before doing anything: not root, not already inside. */
export function needsRootlessReexec(uid = process.getuid?.() ?? 0, env: NodeJS.ProcessEnv = process.env): boolean {
  return uid !== 0 && !isRootlessChild(env);
}

export interface ReexecOptions {
  /** The command to run inside (e.g. `[process.execPath, ...process.execArgv, script, ...args]`). */
  readonly command: readonly string[];
  /** Default: the calling user, from the password database. */
  readonly user?: SubidUser;
  readonly env?: NodeJS.ProcessEnv;
  /** util-linux's unshare (2.38 or later for `--map-auto`); default `unshare` from PATH. */
  readonly unshare?: string;
  readonly subidFiles?: SubidFiles;
}

/**
 * Runs `options.command` in a new user and mount namespace where the calling user is root and its
 * subordinate uid and gid ranges are mapped above (`unshare --user --map-auto --map-root-user
 * --mount`: the setuid newuidmap/newgidmap write the maps, so kiln itself needs no privilege).
 * There overlay (with userxattr), whiteouts and runc work as for root, and every mount kiln makes
 * is private to the namespace and gone with it. Resolves with the inner process's exit code
 * (128 + signal number when it was killed). SIGINT and SIGTERM sent to this process are passed on.
 *
 * Throws RootlessError, before starting anything, when the user has no subordinate ids (the
 * message names the exact line to add) or unshare cannot be started.
 */
export async function reexecRootless(options: ReexecOptions): Promise<number> {
  const user = options.user ?? currentUser();
  assertSubordinateIds(user, options.subidFiles);
  const [command, ...args] = options.command;
  if (command === undefined) throw new RootlessError("KILN_ROOTLESS_UNAVAILABLE", "Cannot run kiln rootless: no command to run in the user namespace");
  const unshare = options.unshare ?? "unshare";
  const child = spawn(unshare, ["--user", "--map-auto", "--map-root-user", "--mount", "--propagation", "private", "--", command, ...args], {
    stdio: "inherit",
    env: { ...(options.env ?? process.env), [ROOTLESS_ENV]: "1" },
  });
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", (error) =>
        reject(new RootlessError("KILN_ROOTLESS_UNAVAILABLE", `Cannot run kiln rootless: "${unshare}" could not be started: ${error.message}`, { cause: error })),
      );
      child.once("exit", (code, signal) => resolve(code ?? 128 + signalNumber(signal)));
    });
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

function currentUser(): SubidUser {
  const id = process.getuid?.() ?? 0;
  try {
    return { name: userInfo().username, id };
  } catch (error) {
    throw new RootlessError("KILN_ROOTLESS_UNAVAILABLE", `Cannot run kiln rootless: uid ${id} has no entry in the password database, so its subordinate ids cannot be looked up`, { cause: error });
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 1 : (osConstants.signals[signal] ?? 1);
}
