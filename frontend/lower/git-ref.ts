import { FrontendError } from "../errors.js";

/**
 * A git source of ADD, as BuildKit's dfgitutil.ParseGitRef reads it (Dockerfile 1.26):
 * `https://host/owner/repo.git#REF:SUBDIR`, `git@host:owner/repo.git#REF`, `git://host/repo`,
 * `ssh://…`, with the query form `?ref=…&tag=…&branch=…&subdir=…&checksum=…&keep-git-dir&…`.
 */
export interface GitRef {
  /** The URL git is given: the source without its fragment and query. */
  readonly remote: string;
  /** `https`, `http`, `git` or `ssh` (scp-like `user@host:path` is ssh). */
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
  /** A branch, tag, full ref or commit; empty: the remote's default branch. */
  readonly ref: string;
  /** A directory inside the repository; empty: the whole tree. */
  readonly subdir: string;
  /** A commit (or a prefix of one) the ref must resolve to. */
  readonly checksum?: string;
  readonly keepGitDir?: boolean;
  readonly submodules?: boolean;
  /** `checkout` (files get the checkout time) or `commit` (the commit's time). */
  readonly mtime?: "checkout" | "commit";
  readonly fetchByCommit?: boolean;
}

const PROTOCOL = /^([a-zA-Z0-9]+):\/\//u;
const SCP = /^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$/u;
const SUPPORTED = new Set(["http", "https", "ssh", "git"]);

/**
 * The git source `src` names, or undefined when it is not one (a local path, a plain https URL
 * without a `.git` path, an unknown protocol, or the deprecated `github.com/…` form, which
 * ADD reads as a local path as BuildKit does). A git source with a malformed query is a
 * FrontendError (`KILN_ADD_GIT_REF`).
 */
export function parseGitRef(src: string): GitRef | undefined {
  if (src.startsWith("./") || src.startsWith("../") || src.startsWith("github.com/")) return undefined;
  const protocol = PROTOCOL.exec(src);
  let base: Omit<GitRef, "ref" | "subdir">;
  let fragment: string;
  let query: string;
  if (protocol !== null) {
    const scheme = (protocol[1] as string).toLowerCase();
    if (!SUPPORTED.has(scheme)) return undefined;
    const rest = src.slice(protocol[0].length);
    const hashAt = rest.indexOf("#");
    const beforeHash = hashAt === -1 ? rest : rest.slice(0, hashAt);
    fragment = hashAt === -1 ? "" : unescape(rest.slice(hashAt + 1));
    const queryAt = beforeHash.indexOf("?");
    const location = queryAt === -1 ? beforeHash : beforeHash.slice(0, queryAt);
    query = queryAt === -1 ? "" : beforeHash.slice(queryAt + 1);
    const slash = location.indexOf("/");
    const authority = slash === -1 ? location : location.slice(0, slash);
    const path = slash === -1 ? "" : unescape(location.slice(slash));
    const host = authority.slice(authority.lastIndexOf("@") + 1);
    // An http(s) URL is a git source only when its path ends in ".git".
    if ((scheme === "http" || scheme === "https") && !path.endsWith(".git")) return undefined;
    base = { remote: `${scheme}://${location}`, scheme, host, path };
  } else {
    const scp = SCP.exec(src);
    if (scp === null) return undefined;
    const [, user = "", host = "", path = "", rawQuery = "", rawFragment = ""] = scp;
    base = { remote: `${user}@${host}:${path}`, scheme: "ssh", host, path };
    fragment = rawFragment;
    query = rawQuery;
  }
  const [ref = "", subdirText] = splitOnce(fragment, ":");
  const subdir = subdirText === undefined ? "" : cleanSubdir(subdirText);
  return withQuery({ ...base, ref, subdir }, query, src);
}

/** BuildKit's loadQuery: the `?key=value` options, checked for conflicts with the fragment. */
function withQuery(ref: GitRef, query: string, src: string): GitRef {
  if (query === "") return ref;
  const fail = (why: string): never => {
    throw new FrontendError("KILN_ADD_GIT_REF", `Cannot use the git source "${src}": ${why}`);
  };
  const values = new Map<string, string[]>();
  for (const pair of query.split(/[&;]/u)) {
    if (pair === "") continue;
    const [key, value] = splitOnce(pair, "=");
    const name = decodeForm(key);
    values.set(name, [...(values.get(name) ?? []), value === undefined ? "" : decodeForm(value)]);
  }
  let out: GitRef = ref;
  let tag = "";
  let branch = "";
  const flag = (key: string, value: string | undefined): boolean => {
    if (value === undefined) return true;
    const parsed = parseBool(value);
    return parsed ?? fail(`invalid ${key} value "${value}"`);
  };
  for (const [key, list] of values) {
    if (list.length > 1) fail(`query "${key}" has multiple values`);
    const value = list[0] === "" ? undefined : list[0];
    if (value === undefined && !["submodules", "keep-git-dir", "fetch-by-commit"].includes(key)) fail(`query "${key}" has no value`);
    const v = value ?? "";
    switch (key) {
      case "ref":
        if (out.ref !== "" && out.ref !== v) fail(`ref conflicts: "${out.ref}" vs "${v}"`);
        out = { ...out, ref: v };
        break;
      case "tag":
        tag = v;
        break;
      case "branch":
        branch = v;
        break;
      case "subdir":
        if (out.subdir !== "" && out.subdir !== v) fail(`subdir conflicts: "${out.subdir}" vs "${v}"`);
        out = { ...out, subdir: v };
        break;
      case "checksum":
      case "commit":
        out = { ...out, checksum: v };
        break;
      case "keep-git-dir":
        out = { ...out, keepGitDir: flag(key, value) };
        break;
      case "submodules":
        out = { ...out, submodules: flag(key, value) };
        break;
      case "fetch-by-commit":
        out = { ...out, fetchByCommit: flag(key, value) };
        break;
      case "mtime":
        if (v !== "checkout" && v !== "commit") fail(`invalid mtime value "${v}" (must be "checkout" or "commit")`);
        out = { ...out, mtime: v as "checkout" | "commit" };
        break;
      default:
        fail(`unexpected query "${key}"`);
    }
  }
  if (tag !== "") {
    const full = tag.startsWith("refs/tags/") ? tag : `refs/tags/${tag}`;
    if (out.ref !== "" && out.ref !== full) fail(`ref conflicts: "${out.ref}" vs "${full}"`);
    out = { ...out, ref: full };
  }
  if (branch !== "") {
    if (tag !== "") fail("branch conflicts with tag");
    const full = branch.startsWith("refs/heads/") ? branch : `refs/heads/${branch}`;
    if (out.ref !== "" && out.ref !== full) fail(`ref conflicts: "${out.ref}" vs "${full}"`);
    out = { ...out, ref: full };
  }
  return out;
}

/** Go's strconv.ParseBool. */
function parseBool(text: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return undefined;
}

/** `path.Join("/", subdir)` without the leading slash, as gitutil's parseOpts. */
function cleanSubdir(subdir: string): string {
  const out: string[] = [];
  for (const part of subdir.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out.join("/");
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}

function unescape(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function decodeForm(text: string): string {
  return unescape(text.replace(/\+/gu, " "));
}
