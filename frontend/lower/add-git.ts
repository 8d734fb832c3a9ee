import { source, type Output, type VertexOptions } from "../../solver/llb/index.js";
import { FrontendError } from "../errors.js";
import type { GitRef } from "./git-ref.js";

/** What ADD's flags add to a git source. */
export interface GitSourceFlags {
  /** `--keep-git-dir`; must agree with a `keep-git-dir` query. */
  readonly keepGitDir?: boolean;
  /** `--checksum`: the commit (or a prefix); must agree with a `checksum` query. */
  readonly checksum?: string;
}

/**
 * The `git://` source op of an ADD, as BuildKit's llb.Git builds it. Identifier:
 * `git://HOST/PATH[#REF[:SUBDIR]]` (the same for https, ssh and git:// remotes of one
 * repository); attrs: `git.fullurl` (the remote git is given), `git.keepgitdir`, `git.checksum`,
 * `git.skipsubmodules`, `git.mtime`, `git.fetchbycommit` when set, the names of the auth
 * secrets (`GIT_AUTH_HEADER`, `GIT_AUTH_TOKEN`), and `git.mountsshsock=default` for ssh
 * remotes. BuildKit also scans the ssh host's keys into `git.knownsshhosts` here; lowering is
 * pure, so kiln does not.
 */
export function gitSource(ref: GitRef, flags: GitSourceFlags, options: VertexOptions): Output {
  if (flags.keepGitDir !== undefined && ref.keepGitDir !== undefined && flags.keepGitDir !== ref.keepGitDir) {
    throw new FrontendError("KILN_ADD_GIT_REF", `Cannot ADD "${ref.remote}": --keep-git-dir=${flags.keepGitDir} contradicts the URL's keep-git-dir=${ref.keepGitDir}`);
  }
  if (flags.checksum !== undefined && ref.checksum !== undefined && flags.checksum !== ref.checksum) {
    throw new FrontendError("KILN_ADD_GIT_REF", `Cannot ADD "${ref.remote}": --checksum="${flags.checksum}" contradicts the URL's checksum "${ref.checksum}"`);
  }
  const keepGitDir = ref.keepGitDir ?? flags.keepGitDir ?? false;
  const checksum = ref.checksum ?? flags.checksum;
  let identifier = `git://${ref.host}${joinPath(ref.path)}`;
  if (ref.ref !== "" || ref.subdir !== "") identifier += `#${ref.ref}${ref.subdir === "" ? "" : `:${ref.subdir}`}`;
  const attrs: Record<string, string> = {
    "git.fullurl": ref.remote,
    "git.authheadersecret": "GIT_AUTH_HEADER",
    "git.authtokensecret": "GIT_AUTH_TOKEN",
  };
  if (keepGitDir) attrs["git.keepgitdir"] = "true";
  if (ref.scheme === "ssh") attrs["git.mountsshsock"] = "default";
  if (checksum !== undefined && checksum !== "") attrs["git.checksum"] = checksum;
  if (ref.submodules === false) attrs["git.skipsubmodules"] = "true";
  if (ref.mtime !== undefined) attrs["git.mtime"] = ref.mtime;
  if (ref.fetchByCommit === true) attrs["git.fetchbycommit"] = "true";
  return source(identifier, attrs, undefined, options);
}

/** Go's `path.Join("/", p)`. */
function joinPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}
