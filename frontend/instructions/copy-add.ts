import { FrontendError } from "../errors.js";
import { parseFlags } from "../flags.js";
import { chompHeredoc, parseHeredocMarker } from "../heredoc.js";
import type { InstructionNode } from "../parser.js";
import type { AddInstruction, CopyInstruction, InlineSource } from "./types.js";
import { baseOf } from "./base.js";

function sourcesAndDest(node: InstructionNode, keyword: string): { sources: string[]; inlineSources: InlineSource[]; dest: string } {
  if (node.args.length < 2) {
    throw new FrontendError("KILN_PARSE_ARGUMENTS", `Cannot parse ${keyword}: it needs at least one source and a destination`, {
      hint: `Write ${keyword} SOURCE... DEST`,
    });
  }
  const dest = node.args[node.args.length - 1] as string;
  if (parseHeredocMarker(dest) !== undefined) throw new FrontendError("KILN_PARSE_ARGUMENTS", `Cannot use a heredoc as the destination of ${keyword}`);
  const sources: string[] = [];
  const inlineSources: InlineSource[] = [];
  for (const src of node.args.slice(0, -1)) {
    const marker = parseHeredocMarker(src);
    if (marker === undefined) {
      sources.push(src);
      continue;
    }
    const heredoc = node.heredocs.find((h) => h.name === marker.name);
    const content = heredoc?.content ?? "";
    inlineSources.push({ path: marker.name, data: marker.chomp ? chompHeredoc(content) : content, expand: marker.expand });
  }
  return { sources, inlineSources, dest };
}

/** COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]… SRC… DEST */
export function parseCopy(node: InstructionNode): CopyInstruction {
  const flags = parseFlags("COPY", node.flags, { from: "string", chown: "string", chmod: "string", link: "bool", parents: "bool", exclude: "strings" });
  const from = flags.strings.get("from");
  const chown = flags.strings.get("chown");
  const chmod = flags.strings.get("chmod");
  return {
    kind: "copy",
    ...baseOf(node),
    ...sourcesAndDest(node, "COPY"),
    ...(from === undefined ? {} : { from }),
    ...(chown === undefined || chown === "" ? {} : { chown }),
    ...(chmod === undefined || chmod === "" ? {} : { chmod }),
    link: flags.bools.get("link") ?? false,
    parents: flags.bools.get("parents") ?? false,
    exclude: flags.lists.get("exclude") ?? [],
  };
}

/** ADD [--chown] [--chmod] [--link] [--keep-git-dir] [--checksum] [--unpack] [--exclude]… SRC… DEST */
export function parseAdd(node: InstructionNode): AddInstruction {
  const flags = parseFlags("ADD", node.flags, {
    chown: "string", chmod: "string", link: "bool", "keep-git-dir": "bool", checksum: "string", unpack: "bool", exclude: "strings",
  });
  const chown = flags.strings.get("chown");
  const chmod = flags.strings.get("chmod");
  const checksum = flags.strings.get("checksum");
  const keepGitDir = flags.bools.get("keep-git-dir");
  const unpack = flags.bools.get("unpack");
  return {
    kind: "add",
    ...baseOf(node),
    ...sourcesAndDest(node, "ADD"),
    ...(chown === undefined || chown === "" ? {} : { chown }),
    ...(chmod === undefined || chmod === "" ? {} : { chmod }),
    ...(checksum === undefined || checksum === "" ? {} : { checksum }),
    ...(keepGitDir === undefined ? {} : { keepGitDir }),
    ...(unpack === undefined ? {} : { unpack }),
    link: flags.bools.get("link") ?? false,
    exclude: flags.lists.get("exclude") ?? [],
  };
}
