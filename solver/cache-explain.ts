import { assertNever, canonicalJson, sha256, type Digest, type Op } from "./llb/index.js";
import type { CacheKeyDep, CacheKeyInputs } from "./cache-key.js";
import type { CacheMapExplain } from "./op.js";

/**
 * Why a step ran instead of being CACHED (`kiln build --explain-cache`). A step that ran has one
 * or more reasons, most specific first:
 * - `no-cache`: `--no-cache` or `--no-cache-filter` made it ignore the cache;
 * - `first-build`: no earlier build of this step is remembered;
 * - `command-changed`: the instruction text (RUN, COPY…) differs;
 * - `arg-changed` / `env-changed`: an environment variable of a RUN differs; `arg` when the name
 *   is a build arg given to either build (values as BuildKit shows them in history; secrets are
 *   mounts, never environment values, so they never appear);
 * - `base-image-changed`: a FROM's image resolved to another manifest digest;
 * - `file-changed`: selected files of the context differ (`paths`: added, removed or changed, as
 *   far as listed; `count`: how many, when known);
 * - `source-changed`: another kind of source (git, http, a huge context) has new content;
 * - `option-changed`: another field of the op differs (`field`: cwd, user, mounts, network…);
 * - `input-changed`: the step it builds on changed (`input`: that step's name);
 * - `result-missing`: the key is unchanged but its recorded result is gone (pruned);
 * - `unknown`: the key changed for none of the reasons above (e.g. a new kiln version).
 */
export type CacheMissReason =
  | { readonly kind: "no-cache" }
  | { readonly kind: "first-build" }
  | { readonly kind: "command-changed"; readonly before: string; readonly after: string }
  | { readonly kind: "arg-changed"; readonly name: string; readonly before?: string; readonly after?: string }
  | { readonly kind: "env-changed"; readonly name: string; readonly before?: string; readonly after?: string }
  | { readonly kind: "base-image-changed"; readonly before: string; readonly after: string }
  | { readonly kind: "file-changed"; readonly paths: readonly string[]; readonly count?: number }
  | { readonly kind: "source-changed"; readonly before: string; readonly after: string }
  | { readonly kind: "option-changed"; readonly field: string }
  | { readonly kind: "input-changed"; readonly input: string }
  | { readonly kind: "result-missing" }
  | { readonly kind: "unknown" };

/**
 * What is remembered about one step after it ran, under its stable identity (see
 * `stepIdentity`): enough of its key's ingredients to say later which one changed.
 */
export interface StepRecord {
  readonly identity: string;
  readonly name: string;
  /** The instruction text (`RUN make`) or, without one, the progress name. */
  readonly command: string;
  readonly key: Digest;
  readonly keyInputs: CacheKeyInputs;
  readonly op: StepOpSummary;
  /** The identity and name of the step behind each input, in input order. */
  readonly inputs: readonly { readonly identity: string; readonly name: string }[];
  /** Names of the build args given to the build that ran it. */
  readonly buildArgs: readonly string[];
  readonly explain?: CacheMapExplain;
  readonly time: number;
}

/** The fields of an op that explanations compare: exec environments by name, other fields as text. */
export interface StepOpSummary {
  readonly kind: Op["kind"];
  readonly env: Readonly<Record<string, string>>;
  readonly fields: Readonly<Record<string, string>>;
}

/** Summarizes an op for a StepRecord. Large values (file contents of mkfile) enter by digest. */
export function summarizeOp(op: Op): StepOpSummary {
  switch (op.kind) {
    case "exec": {
      const env: Record<string, string> = {};
      for (const entry of op.meta.env) {
        const eq = entry.indexOf("=");
        env[eq < 0 ? entry : entry.slice(0, eq)] = eq < 0 ? "" : entry.slice(eq + 1);
      }
      return {
        kind: op.kind,
        env,
        fields: {
          args: canonicalJson(op.meta.args),
          cwd: op.meta.cwd,
          user: op.meta.user,
          hostname: op.meta.hostname ?? "",
          mounts: canonicalJson(op.mounts),
          network: op.network,
          security: op.security,
          platform: canonicalJson(op.platform ?? null),
        },
      };
    }
    case "file":
      return { kind: op.kind, env: {}, fields: { actions: sha256(canonicalJson(op.actions)), platform: canonicalJson(op.platform ?? null) } };
    case "source":
      return { kind: op.kind, env: {}, fields: { identifier: op.identifier, attrs: canonicalJson(op.attrs), platform: canonicalJson(op.platform ?? null) } };
    case "merge":
    case "diff":
      return { kind: op.kind, env: {}, fields: {} };
    default:
      return assertNever(op, "op kind");
  }
}

/** What `explainStep` needs about the inputs of the step now: who they are and why they changed. */
export interface InputNow {
  readonly identity: string;
  readonly name: string;
  /** The reasons the input step itself ran in this build (undefined: it did not run). */
  readonly reasons?: readonly CacheMissReason[];
  /** For checksum deps: which of the input's paths this step reads (undefined: all). */
  readonly selects?: (path: string) => boolean;
}

/**
 * Compares the step as it is now with its earlier record and says why its key differs. `now`
 * is a StepRecord of the current build (not yet stored); `inputs` describe its inputs now.
 */
export function explainStep(before: StepRecord, now: StepRecord, inputs: readonly InputNow[]): readonly CacheMissReason[] {
  const reasons: CacheMissReason[] = [];
  if (before.op.kind !== now.op.kind) return [{ kind: "command-changed", before: before.command, after: now.command }];
  if (before.keyInputs.digest !== now.keyInputs.digest) reasons.push(...opReasons(before, now));
  const count = Math.max(before.keyInputs.deps.length, now.keyInputs.deps.length);
  for (let index = 0; index < count; index++) {
    const b = before.keyInputs.deps[index];
    const a = now.keyInputs.deps[index];
    if (b !== undefined && a !== undefined && canonicalJson(a) === canonicalJson(b)) continue;
    reasons.push(inputReason(a, inputs[index], now.inputs[index]?.name ?? `input ${index}`));
  }
  if (reasons.length === 0) return before.key === now.key ? [{ kind: "result-missing" }] : [{ kind: "unknown" }];
  return dedupe(reasons);
}

/** Why the op's own part of the key (`CacheMap.digest`) changed. */
function opReasons(before: StepRecord, now: StepRecord): CacheMissReason[] {
  const reasons: CacheMissReason[] = [];
  const op = now.op.kind;
  if (op === "source") {
    const b = before.op.fields["identifier"] ?? "";
    const a = now.op.fields["identifier"] ?? "";
    if (a.startsWith("docker-image://") || a.startsWith("oci-layout://")) {
      return [{ kind: "base-image-changed", before: before.explain?.resolved ?? b, after: now.explain?.resolved ?? a }];
    }
    if (before.explain !== undefined && now.explain !== undefined) {
      const files = fileReason(before.explain, now.explain);
      if (files !== undefined) return [files];
    }
    return [{ kind: "source-changed", before: b, after: a }];
  }
  if (before.command !== now.command) reasons.push({ kind: "command-changed", before: before.command, after: now.command });
  const given = new Set([...before.buildArgs, ...now.buildArgs]);
  for (const name of [...new Set([...Object.keys(before.op.env), ...Object.keys(now.op.env)])].sort()) {
    const b = before.op.env[name];
    const a = now.op.env[name];
    if (b === a) continue;
    reasons.push({ kind: given.has(name) ? "arg-changed" : "env-changed", name, ...(b === undefined ? {} : { before: b }), ...(a === undefined ? {} : { after: a }) });
  }
  for (const field of Object.keys(now.op.fields).sort()) {
    if (before.op.fields[field] === now.op.fields[field]) continue;
    // A changed RUN command is said once, as the instruction text.
    if (field === "args" && before.command !== now.command) continue;
    if (field === "actions" && before.command !== now.command) continue;
    reasons.push({ kind: "option-changed", field });
  }
  return reasons;
}

/** Why one input's part of the key changed. */
function inputReason(now: CacheKeyDep | undefined, input: InputNow | undefined, name: string): CacheMissReason {
  if (now?.kind === "checksum" && input?.reasons !== undefined) {
    const files = input.reasons.find((r): r is Extract<CacheMissReason, { kind: "file-changed" }> => r.kind === "file-changed");
    if (files !== undefined) {
      const paths = input.selects === undefined ? files.paths : files.paths.filter(input.selects);
      if (paths.length > 0 || files.paths.length === 0) return { kind: "file-changed", paths, ...(files.paths.length === 0 && files.count !== undefined ? { count: files.count } : {}) };
    }
  }
  return { kind: "input-changed", input: input?.name ?? name };
}

/** The paths that differ between two per-path listings; undefined when either was too large to list. */
function fileReason(before: CacheMapExplain, now: CacheMapExplain): CacheMissReason | undefined {
  if (before.paths === undefined || now.paths === undefined) {
    if (now.pathCount === undefined) return undefined;
    return { kind: "file-changed", paths: [] };
  }
  const changed: string[] = [];
  for (const [path, digest] of Object.entries(now.paths)) if (before.paths[path] !== digest) changed.push(path);
  for (const path of Object.keys(before.paths)) if (!(path in now.paths)) changed.push(path);
  changed.sort();
  // A changed file also changes nothing else in the listing; a directory's own entry (mode) counts.
  return { kind: "file-changed", paths: changed, count: changed.length };
}

function dedupe(reasons: readonly CacheMissReason[]): CacheMissReason[] {
  const seen = new Set<string>();
  return reasons.filter((r) => {
    const text = canonicalJson(r);
    if (seen.has(text)) return false;
    seen.add(text);
    return true;
  });
}

/** One line of text for a reason, as plain progress prints it after `#N explain: <step>: `. */
export function formatReason(reason: CacheMissReason): string {
  switch (reason.kind) {
    case "no-cache":
      return "the cache was not used (--no-cache)";
    case "first-build":
      return "no earlier build of this step";
    case "command-changed":
      return `command changed: ${JSON.stringify(reason.before)} -> ${JSON.stringify(reason.after)}`;
    case "arg-changed":
      return `build arg ${reason.name} changed: ${quoteValue(reason.before)} -> ${quoteValue(reason.after)}`;
    case "env-changed":
      return `env ${reason.name} changed: ${quoteValue(reason.before)} -> ${quoteValue(reason.after)}`;
    case "base-image-changed":
      return `base image changed: ${reason.before} -> ${reason.after}`;
    case "file-changed": {
      if (reason.paths.length === 0) return reason.count === undefined ? "files changed (too many to list)" : `${reason.count} files changed`;
      const shown = reason.paths.slice(0, 10).join(", ");
      const more = reason.paths.length > 10 ? ` and ${reason.paths.length - 10} more` : "";
      return `file${reason.paths.length === 1 ? "" : "s"} changed: ${shown}${more}`;
    }
    case "source-changed":
      return `source changed: ${reason.before} -> ${reason.after}`;
    case "option-changed":
      return `${reason.field} changed`;
    case "input-changed":
      return `its input changed: ${reason.input}`;
    case "result-missing":
      return "its cached result was removed (pruned)";
    case "unknown":
      return "its cache key changed";
    default:
      return assertNever(reason, "cache miss reason");
  }
}

function quoteValue(value: string | undefined): string {
  return value === undefined ? "(unset)" : JSON.stringify(value);
}
