import { file, merge, source, type Chown, type FileActionSpec, type Output, type UserRef } from "../../solver/llb/index.js";
import { FrontendError } from "../errors.js";
import type { AddInstruction, CopyInstruction } from "../instructions/types.js";
import { gitSource } from "./add-git.js";
import type { LowerContext } from "./context.js";
import { warnIgnoredSource } from "./copy-ignored.js";
import { parseGitRef } from "./git-ref.js";
import { resolveDest, resolveSource } from "./paths.js";
import { envMap, nextStepName, uppercaseKeyword, vertexOptions, withHistory, type StageState } from "./stage-state.js";
import { expandChecked } from "./undefined-var.js";

/** `user[:group]` → Chown; numbers become ids, anything else names. */
export function parseChown(text: string): Chown {
  const [user = "", group] = text.split(":", 2);
  const ref = (s: string): UserRef => (/^\d+$/u.test(s) ? { id: Number(s) } : { name: s });
  return { user: ref(user), group: group === undefined || group === "" ? null : ref(group) };
}

/** `--chmod`: an octal mode up to 07777, or a symbolic mode (`u+x,g-w`). */
export function parseChmod(text: string): number | string {
  if (/^[0-7]+$/u.test(text)) {
    const mode = Number.parseInt(text, 8);
    if (mode <= 0o7777) return mode;
  }
  if (/^\d+$/u.test(text)) throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --chmod="${text}": it should be an octal string between 0 and 07777`);
  if (!/^([ugoa]*[-+=]([rwxXst]*|[ugo]))(,[ugoa]*[-+=]([rwxXst]*|[ugo]))*$/u.test(text)) {
    throw new FrontendError("KILN_PARSE_FLAG", `Cannot use --chmod="${text}": expected an octal mode or a symbolic mode such as u+x`);
  }
  return text;
}

function isUrl(src: string): boolean {
  return src.startsWith("http://") || src.startsWith("https://");
}

/** BuildKit's rules for `ADD --checksum`: one source, and it is an http(s) URL or a git repository. */
function checkAddChecksum(sources: readonly string[], checksum: string): void {
  if (sources.length !== 1) throw new FrontendError("KILN_ADD_CHECKSUM", `Cannot use --checksum="${checksum}" with ${sources.length} sources: it applies to exactly one`);
  const src = sources[0] as string;
  if (parseGitRef(src) === undefined && !isUrl(src)) {
    throw new FrontendError("KILN_ADD_CHECKSUM", `Cannot use --checksum="${checksum}" with "${src}": a checksum needs an http(s) URL or a git repository as the source`);
  }
}

/**
 * COPY/ADD → one file op of copy actions onto the stage's tree (or, with --link, a copy onto
 * scratch merged over it). Sources come from the build context, `--from` a stage or image, ADD
 * URLs, or heredocs; defaults per local source follow BuildKit's dispatchCopy.
 */
export function lowerCopy(ctx: LowerContext, state: StageState, instruction: CopyInstruction | AddInstruction): StageState {
  const keyword = instruction.kind === "copy" ? "COPY" : "ADD";
  const env = envMap(state);
  const expand = (word: string): string => ctx.shell.expandWord(word, env).value;
  const checked = (word: string): string => expandChecked(ctx, state, word, instruction.range);
  const sources = instruction.sources.map(checked);
  const destText = checked(instruction.dest);
  const chown = instruction.chown === undefined ? undefined : checked(instruction.chown);
  const chmod = instruction.chmod === undefined ? undefined : checked(instruction.chmod);
  const exclude = instruction.exclude.map(expand);
  const several = sources.length + instruction.inlineSources.length > 1;
  let dest = resolveDest(state.workdir, destText);
  if (several && !dest.endsWith("/")) dest += "/";
  const owner = chown === undefined ? null : parseChown(chown);
  const mode = chmod === undefined ? null : parseChmod(chmod);
  const from = instruction.kind === "copy" ? instruction.from : undefined;
  if (from !== undefined && ctx.shell.expandWord(from, new Map()).value !== from) {
    throw new FrontendError("KILN_COPY_FROM_EXPANSION", `Cannot expand variables in --from="${from}"`, {
      hint: "Define a stage with FROM using a global ARG, and copy from that stage",
    });
  }
  const origin: Output = from === undefined ? ctx.contextTree() : ctx.mountSource(from, state.platform);
  const unpackDefault = instruction.kind === "add" ? (instruction.unpack ?? true) : false;
  const actions: FileActionSpec[] = [];
  const base = { owner, mode, followSymlinks: true, createDestPath: true, alwaysReplaceExisting: false, exclude } as const;
  let history = keyword;
  if (instruction.kind === "copy" && instruction.parents) history += " --parents";
  if (chown !== undefined) history += ` --chown=${chown}`;
  if (chmod !== undefined) history += ` --chmod=${chmod}`;
  if (instruction.kind === "add" && instruction.checksum !== undefined) checkAddChecksum(sources, instruction.checksum);
  for (const src of sources) {
    history += ` ${src}`;
    const git = parseGitRef(src);
    if (git !== undefined) {
      if (instruction.kind === "copy") throw new FrontendError("KILN_COPY_SOURCE", `Cannot COPY "${src}": a git source needs ADD`);
      const flags = { ...(instruction.keepGitDir === undefined ? {} : { keepGitDir: instruction.keepGitDir }), ...(instruction.checksum === undefined ? {} : { checksum: instruction.checksum }) };
      const repo = gitSource(git, flags, { metadata: { name: `${keyword} ${src}` } });
      actions.push({
        kind: "copy", source: repo, src: "/", dest, ...base, followSymlinks: false, dirContentsOnly: false, allowWildcard: false, allowEmptyWildcard: false,
        include: [], attemptUnpack: false,
      });
      continue;
    }
    if (isUrl(src)) {
      if (instruction.kind === "copy") throw new FrontendError("KILN_COPY_SOURCE", `Cannot COPY "${src}": a URL source needs ADD`);
      let name = "__unnamed__";
      try {
        const base = new URL(src).pathname.split("/").filter((p) => p !== "").pop();
        if (base !== undefined && base !== ".") name = decodeURIComponent(base);
      } catch {
        // keep the placeholder name, as BuildKit does for an unparsable URL
      }
      const attrs: Record<string, string> = { "http.filename": name };
      if (instruction.kind === "add" && instruction.checksum !== undefined) attrs["http.checksum"] = instruction.checksum;
      const http = source(src, attrs, undefined, { metadata: { name: `${keyword} ${src}` } });
      actions.push({
        kind: "copy", source: http, src: `/${name}`, dest, ...base, dirContentsOnly: false, allowWildcard: false, allowEmptyWildcard: false,
        include: [], attemptUnpack: instruction.kind === "add" && instruction.unpack === true,
      });
      continue;
    }
    if (from === undefined) warnIgnoredSource(ctx, keyword, src, instruction.range);
    let srcPath = src;
    let include: string[] = [];
    if (instruction.kind === "copy" && instruction.parents) {
      const pivot = src.indexOf("/./");
      const pattern = pivot === -1 ? src : src.slice(pivot + 3);
      srcPath = pivot === -1 ? "/" : src.slice(0, pivot);
      include = [resolveSource(pattern).slice(1)];
    }
    actions.push({
      kind: "copy", source: origin, src: resolveSource(srcPath), dest, ...base, dirContentsOnly: true, allowWildcard: true, allowEmptyWildcard: true,
      include, attemptUnpack: unpackDefault,
    });
  }
  for (const inline of instruction.inlineSources) {
    history += ` <<${inline.path}`;
    const data = inline.expand ? checked(inline.data) : inline.data;
    const doc = file(null, [{ kind: "mkfile", path: `/${inline.path}`, mode: 0o644, data: Buffer.from(data).toString("base64"), owner: null }], state.platform, {
      metadata: { name: "preparing inline document" },
    });
    actions.push({
      kind: "copy", source: doc, src: `/${inline.path}`, dest, ...base, dirContentsOnly: false, allowWildcard: false, allowEmptyWildcard: false,
      include: [], attemptUnpack: false,
    });
  }
  history += ` ${destText} # buildkit`;
  const lexer = ctx.shell;
  let text: string;
  try {
    text = lexer.expandWord(instruction.original, env).value;
  } catch {
    text = instruction.original;
  }
  const step = nextStepName(state, uppercaseKeyword(text));
  const options = vertexOptions(step.name, instruction.original, { source: ctx.info, range: instruction.range, stage: ctx.stage });
  let tree: Output;
  if (instruction.link && chmod === undefined && state.tree !== null) {
    const layer = file(null, actions, state.platform, options);
    tree = merge([state.tree, layer], options);
  } else {
    tree = file(instruction.link && chmod === undefined ? null : state.tree, actions, state.platform, options);
  }
  return withHistory(step.state, history, false, { tree });
}
