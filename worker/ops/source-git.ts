import type { Stats } from "node:fs";
import { lstat, lutimes, mkdtemp, readdir, rename, rm, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalJson, KilnError, sha256 } from "../../solver/llb/index.js";
import type { CacheMap, OpContext, OpRunner, ResultRef, SolverVertex } from "../../solver/op.js";
import { ownerTag } from "../process-owner.js";
import type { Snapshotter } from "../snapshotter/types.js";
import { GitCommandError, redactCredentials, runGit } from "./source-git-cli.js";

const SCHEME = "git://";

/** A git source that cannot be fetched or checked out (unreachable remote, bad subdir, malformed attrs). */
export class GitSourceError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("KILN_GIT_SOURCE_FAILED", message, options);
  }
}

/** A branch, tag or ref the remote does not have. */
export class GitRefNotFoundError extends KilnError {
  constructor(remote: string, ref: string, options?: { cause?: unknown }) {
    super("KILN_GIT_REF_NOT_FOUND", `Cannot find "${ref}" in the git repository "${redactCredentials(remote)}": it has no branch, tag or ref of that name`, options);
  }
}

/** `--checksum` (git.checksum) names another commit than the ref resolves to. */
export class GitChecksumMismatchError extends KilnError {
  constructor(remote: string, ref: string, checksum: string, actual: string) {
    super("KILN_GIT_CHECKSUM_MISMATCH", `Cannot use "${ref || "HEAD"}" of "${redactCredentials(remote)}": it is commit ${actual}, but --checksum expects ${checksum}`);
  }
}

/** A `git://` source op read back: BuildKit's GitIdentifier fields that kiln acts on. */
export interface GitSourceSpec {
  readonly remote: string;
  readonly ref: string;
  readonly subdir: string;
  readonly keepGitDir: boolean;
  readonly checksum: string;
  readonly skipSubmodules: boolean;
  readonly mtime: "checkout" | "commit";
  readonly fetchByCommit: boolean;
}

/** What a ref resolved to: the ref as the remote names it, the object it points at, and the commit. */
interface Resolved {
  readonly ref: string;
  /** The sha ls-remote gave (an annotated tag's own object for a tag). */
  readonly object: string;
  /** The commit the checkout is of. */
  readonly commit: string;
}

export interface GitSourceDeps {
  readonly snapshotter: Snapshotter;
}

const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/u;

/** Reads the identifier `git://HOST/PATH[#REF[:SUBDIR]]` and the `git.*` attrs of a source op. */
export function parseGitSource(identifier: string, attrs: Readonly<Record<string, string>>): GitSourceSpec {
  if (!identifier.startsWith(SCHEME)) throw new GitSourceError(`Cannot read "${identifier}" as a git source: it does not start with "${SCHEME}"`);
  const body = identifier.slice(SCHEME.length);
  const hashAt = body.indexOf("#");
  const location = hashAt === -1 ? body : body.slice(0, hashAt);
  const fragment = hashAt === -1 ? "" : body.slice(hashAt + 1);
  const colon = fragment.indexOf(":");
  const ref = colon === -1 ? fragment : fragment.slice(0, colon);
  const subdir = colon === -1 ? "" : fragment.slice(colon + 1);
  const mtime = attrs["git.mtime"] ?? "checkout";
  if (mtime !== "checkout" && mtime !== "commit") throw new GitSourceError(`Cannot read the git source "${identifier}": git.mtime is "${mtime}", not "checkout" or "commit"`);
  const checksum = attrs["git.checksum"] ?? "";
  if (checksum !== "" && !/^[a-fA-F0-9]+$/u.test(checksum)) {
    throw new GitSourceError(`Cannot use the checksum "${checksum}" for the git source "${identifier}": it should be a hex commit hash (or a prefix of one)`);
  }
  return {
    remote: attrs["git.fullurl"] ?? `https://${location}`,
    ref,
    subdir,
    keepGitDir: attrs["git.keepgitdir"] === "true",
    checksum: checksum.toLowerCase(),
    skipSubmodules: attrs["git.skipsubmodules"] === "true",
    mtime,
    fetchByCommit: attrs["git.fetchbycommit"] === "true",
  };
}

/**
 * The runner of a `git://` source op (ADD of a git repository), with the `git` binary.
 *
 * Cache map: the ref resolved to a commit by `git ls-remote` (the remote's default branch when
 * no ref is given; a branch wins over a tag of the same name, as BuildKit decides), then the
 * digest of BuildKit's git cache key: the commit, plus `.git#REF` with keep-git-dir, `:SUBDIR`,
 * and the submodule and mtime options. So a branch that moves re-runs the ADD, one that does not
 * is a cache hit, and https and ssh URLs of one commit share a key. A full commit sha as the
 * ref needs no network. `git.checksum` must be a prefix of the commit (or of an annotated tag's
 * object): otherwise GitChecksumMismatchError.
 *
 * Run: a shallow fetch (`--depth=1`) of exactly that commit into a temporary bare repository,
 * then a checkout into a new snapshot: without `.git` (BuildKit's default), or, with
 * keep-git-dir and no subdir, as a repository of its own with one shallow commit, detached
 * HEAD and `origin` set to the remote. With a subdir only that directory's contents are kept
 * (it must be a real directory). Files are owned 0:0 (the checkout runs as root), modes are
 * git's (0644, 0755 for executables, directories 0755); mtimes are the checkout time unless
 * `git.mtime=commit`, which gives every entry the commit's time. Submodules are checked out
 * unless `git.skipsubmodules`. Credentials in the URL never appear in errors.
 */
export function createGitSourceRunner(deps: GitSourceDeps, vertex: SolverVertex): OpRunner {
  const op = vertex.op;
  if (op.kind !== "source" || !op.identifier.startsWith(SCHEME)) {
    throw new GitSourceError(`Cannot run vertex "${vertex.digest}" as a git source: it is not a "${SCHEME}" source op`);
  }
  const spec = parseGitSource(op.identifier, op.attrs);
  let resolved: Promise<Resolved> | undefined;
  const resolve = (context: OpContext): Promise<Resolved> => {
    resolved ??= withHome((home) => resolveRef(spec, home, context.signal));
    resolved.catch(() => (resolved = undefined));
    return resolved;
  };

  return {
    async cacheMap(context: OpContext): Promise<CacheMap> {
      const found = await resolve(context);
      return { digest: sha256(canonicalJson({ git: cacheKey(spec, found) })), deps: [] };
    },

    async run(_inputs: readonly ResultRef[], context: OpContext): Promise<readonly ResultRef[]> {
      const found = await resolve(context);
      const active = await deps.snapshotter.prepare(null);
      try {
        await withHome(async (home) => {
          const git = (args: readonly string[]) =>
            runGit(args, { home, signal: context.signal, onStderr: (text) => context.progress.log("stderr", text) });
          await checkout(spec, found, join(home, "repo.git"), active.upperdir, git);
        });
        return [{ id: await deps.snapshotter.commit(active) }];
      } catch (error) {
        await deps.snapshotter.abort(active).catch(() => {});
        throw error;
      }
    },
  };
}

/** BuildKit's shaToCacheKey. */
function cacheKey(spec: GitSourceSpec, found: Resolved): string {
  let key = spec.keepGitDir ? found.object : found.commit;
  if (spec.keepGitDir) key += `.git${found.ref === "" ? "" : `#${found.ref}`}`;
  if (spec.subdir !== "") key += `:${spec.subdir}`;
  if (spec.skipSubmodules) key += "(skip-submodules)";
  if (spec.mtime !== "checkout") key += `(mtime=${spec.mtime})`;
  return key;
}

/** A temporary directory (HOME for git, and the bare repository) for `fn`, removed afterwards. */
async function withHome<T>(fn: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), `kiln-git-${ownerTag()}-`));
  try {
    return await fn(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** BuildKit's resolveMetadata: the ref → commit, by ls-remote unless it is a commit already. */
async function resolveRef(spec: GitSourceSpec, home: string, signal: AbortSignal): Promise<Resolved> {
  const check = (ref: string, object: string, commit: string) => {
    if (spec.checksum !== "" && !object.startsWith(spec.checksum) && !commit.startsWith(spec.checksum)) {
      throw new GitChecksumMismatchError(spec.remote, ref, spec.checksum, commit === object ? commit : `${object} (commit ${commit})`);
    }
  };
  if (COMMIT.test(spec.ref)) {
    check(spec.ref, spec.ref, spec.ref);
    return { ref: spec.ref, object: spec.ref, commit: spec.ref };
  }
  if (spec.fetchByCommit) {
    if (!COMMIT.test(spec.checksum)) throw new GitSourceError(`Cannot fetch "${redactCredentials(spec.remote)}" by commit: fetch-by-commit needs the full commit sha as the checksum, not "${spec.checksum}"`);
    const ref = spec.ref === "" ? spec.checksum : spec.ref.startsWith("refs/") ? spec.ref : `refs/heads/${spec.ref}`;
    return { ref, object: spec.checksum, commit: spec.checksum };
  }
  const git = (args: readonly string[]) => runGit(args, { home, signal });
  const lsRemote = async (args: readonly string[]): Promise<string> => {
    try {
      return await git(["ls-remote", ...args]);
    } catch (error) {
      if (error instanceof GitCommandError) {
        throw new GitSourceError(`Cannot read the git repository "${redactCredentials(spec.remote)}": ${lastLine(error.stderr) ?? error.message}`, { cause: error });
      }
      throw error;
    }
  };
  let ref = spec.ref;
  if (ref === "") {
    const head = await lsRemote(["--symref", "--", spec.remote, "HEAD"]);
    const symref = /^ref: (\S+)\tHEAD$/mu.exec(head);
    if (symref === null) throw new GitSourceError(`Cannot find the default branch of the git repository "${redactCredentials(spec.remote)}": it does not say which branch HEAD is`);
    ref = symref[1] as string;
  }
  const listing = await lsRemote(["--", spec.remote, ref, `${ref}^{}`]);
  const bare = (prefix: string) => `${prefix}${ref.startsWith(prefix) ? ref.slice(prefix.length) : ref}`;
  const partialRef = `refs/${ref.startsWith("refs/") ? ref.slice(5) : ref}`;
  const headRef = bare("refs/heads/");
  const tagRef = bare("refs/tags/");
  let sha = "";
  let usedRef = "";
  let headSha = "";
  let tagSha = "";
  let peeledSha = "";
  for (const line of listing.split("\n")) {
    const [lineSha = "", lineRef = ""] = line.split("\t");
    if (lineRef === headRef) headSha = lineSha;
    else if (lineRef === tagRef) tagSha = lineSha;
    else if (lineRef === `${tagRef}^{}`) peeledSha = lineSha;
    else if (lineRef === partialRef) {
      sha = lineSha;
      usedRef = lineRef;
    }
  }
  // Like git checkout, a branch wins over a tag of the same name.
  if (sha === "" && headSha !== "") {
    sha = headSha;
    usedRef = headRef;
  }
  if (sha !== "") peeledSha = "";
  if (sha === "" && tagSha !== "") {
    sha = tagSha;
    usedRef = tagRef;
  }
  if (sha === "") throw new GitRefNotFoundError(spec.remote, ref);
  if (!COMMIT.test(sha)) throw new GitSourceError(`Cannot use "${ref}" of "${redactCredentials(spec.remote)}": the remote answered with "${sha}", which is not a commit sha`);
  const commit = peeledSha === "" ? sha : peeledSha;
  check(ref, sha, commit);
  return { ref: usedRef, object: sha, commit };
}

type Git = (args: readonly string[]) => Promise<string>;

/** Fetches `found` shallowly into the bare repository `bare` and checks it out into `target`. */
async function checkout(spec: GitSourceSpec, found: Resolved, bare: string, target: string, git: Git): Promise<void> {
  const remote = spec.remote;
  const failed = (what: string, error: unknown): never => {
    const why = error instanceof GitCommandError ? (lastLine(error.stderr) ?? error.message) : (error as Error).message;
    throw new GitSourceError(`Cannot ${what} "${redactCredentials(remote)}"${spec.ref === "" ? "" : ` at "${spec.ref}"`}: ${why}`, { cause: error });
  };
  const inBare = (args: readonly string[]) => git(["--git-dir", bare, ...args]);
  await git(["-c", "init.defaultBranch=master", "init", "-q", "--bare", ...(found.commit.length === 64 ? ["--object-format=sha256"] : []), bare]);
  const byCommit = COMMIT.test(spec.ref) || spec.fetchByCommit;
  try {
    if (byCommit) await inBare(["fetch", "-q", "--depth=1", "--no-tags", "--", remote, found.commit]);
    else await inBare(["fetch", "-q", "--depth=1", "--no-tags", "--force", "--", remote, `${found.ref}:${found.ref}`]);
  } catch (error) {
    if (!byCommit) failed("fetch", error);
    // A server that refuses an unadvertised commit: fetch its branches and tags and look there.
    await inBare(["fetch", "-q", "--tags", "--", remote, "+refs/heads/*:refs/remotes/origin/*"]).catch((e: unknown) => failed("fetch", e));
  }
  const have = async (object: string) => inBare(["cat-file", "-e", `${object}^{commit}`]).then(() => true, () => false);
  if (!(await have(found.commit))) {
    // The ref moved after it was resolved: fetch the resolved commit itself, as BuildKit does.
    await inBare(["fetch", "-q", "--depth=1", "--no-tags", "--", remote, found.commit]).catch((e: unknown) => failed("fetch the resolved commit of", e));
    if (!(await have(found.commit))) failed("check out", new Error(`the fetched ref does not contain the resolved commit ${found.commit}`));
  }
  const subdir = spec.subdir.split("/").filter((p) => p !== "" && p !== ".");
  if (subdir.includes("..")) failed("check out", new Error(`the subdirectory "${spec.subdir}" climbs out of the repository`));
  if (spec.keepGitDir && subdir.length === 0) {
    await cloneWithGitDir(spec, found, bare, target, git).catch((e: unknown) => failed("check out", e));
  } else {
    const worktree = subdir.length === 0 ? target : await mkdtemp(join(target, ".kiln-checkout-"));
    await git(["--git-dir", bare, "--work-tree", worktree, "checkout", "-q", "--no-overlay", found.commit, "--", "."]).catch((e: unknown) => failed("check out", e));
    if (!spec.skipSubmodules) await updateSubmodules(git, bare, worktree).catch((e: unknown) => failed("check out the submodules of", e));
    if (subdir.length > 0) await keepSubdir(worktree, subdir, target).catch((e: unknown) => failed(`check out the subdirectory "${spec.subdir}" of`, e));
  }
  await normalizeModes(target);
  if (spec.mtime === "commit") {
    const seconds = Number((await inBare(["log", "-1", "--format=%ct", `${found.commit}^{commit}`])).trim());
    await setTimes(target, seconds);
  }
}

/** keep-git-dir: `target` becomes a repository holding the one fetched commit, HEAD detached at it, origin = the remote. */
async function cloneWithGitDir(spec: GitSourceSpec, found: Resolved, bare: string, target: string, git: Git): Promise<void> {
  const inTarget = (args: readonly string[]) => git(["-C", target, ...args]);
  await git(["-c", "init.defaultBranch=master", "init", "-q", ...(found.commit.length === 64 ? ["--object-format=sha256"] : []), target]);
  let pull: string;
  if (COMMIT.test(found.ref)) {
    await git(["--git-dir", bare, "update-ref", "refs/kiln/pin", found.commit]);
    pull = "refs/kiln/pin";
  } else if (spec.fetchByCommit) {
    pull = `${found.commit}:${found.ref}`;
  } else {
    pull = `${found.ref}:${found.ref}`;
  }
  // file:// rather than a path: no local-clone shortcuts that could copy unintended files.
  await inTarget(["fetch", "-q", "-u", "--depth=1", "--", `file://${bare}`, pull]);
  await inTarget(["-c", "advice.detachedHead=false", "checkout", "-q", found.commit]);
  await inTarget(["remote", "add", "origin", redactCredentials(spec.remote)]);
  if (!spec.skipSubmodules) await updateSubmodules(git, join(target, ".git"), target);
  await inTarget(["reflog", "expire", "--all", "--expire=now"]);
  await rm(join(target, ".git", "FETCH_HEAD"), { force: true });
}

async function updateSubmodules(git: Git, gitDir: string, worktree: string): Promise<void> {
  if ((await lstat(join(worktree, ".gitmodules")).catch(() => undefined)) === undefined) return;
  await git(["--git-dir", gitDir, "--work-tree", worktree, "-c", "protocol.file.allow=always", "submodule", "update", "--init", "--recursive", "--depth=1"]);
}

/** Moves the contents of `worktree/subdir` to `target` and drops the rest; every component must be a real directory. */
async function keepSubdir(worktree: string, subdir: readonly string[], target: string): Promise<void> {
  let dir = worktree;
  for (const part of subdir) {
    dir = join(dir, part);
    const stats = await lstat(dir).catch(() => undefined);
    if (stats === undefined) throw new Error(`the repository has no directory "${subdir.join("/")}"`);
    if (!stats.isDirectory()) throw new Error(`"${subdir.join("/")}" is not a directory in the repository`);
  }
  for (const name of await readdir(dir)) await rename(join(dir, name), join(target, name));
  await rm(worktree, { recursive: true, force: true });
}

/** Modes as git makes them under umask 022, whatever this process's umask: no group or other write bits. */
async function normalizeModes(root: string): Promise<void> {
  await walk(root, async (path, stats) => {
    if (!stats.isSymbolicLink() && (stats.mode & 0o022) !== 0) await chmod(path, stats.mode & 0o7755);
  });
}

/** `git.mtime=commit`: every entry gets the commit time; directories after their contents. */
async function setTimes(root: string, seconds: number): Promise<void> {
  const dirs: string[] = [];
  await walk(root, async (path, stats) => {
    if (stats.isDirectory()) dirs.push(path);
    else await lutimes(path, seconds, seconds);
  });
  for (const dir of dirs.reverse()) await lutimes(dir, seconds, seconds);
  await lutimes(root, seconds, seconds);
}

async function walk(dir: string, visit: (path: string, stats: Stats) => Promise<void>): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const stats = await lstat(path);
    await visit(path, stats);
    if (stats.isDirectory()) await walk(path, visit);
  }
}

function lastLine(text: string): string | undefined {
  return text.trim().split("\n").map((l) => l.replace(/^fatal: /u, "").trim()).filter((l) => l !== "").pop();
}
