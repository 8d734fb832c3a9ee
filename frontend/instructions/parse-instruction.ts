import { FrontendError } from "../errors.js";
import { parseFlags } from "../flags.js";
import type { InstructionNode } from "../parser.js";
import { editDistance } from "../suggest.js";
import { baseOf } from "./base.js";
import { parseAdd, parseCopy } from "./copy-add.js";
import { parseHealthcheck } from "./healthcheck.js";
import type { ArgDeclaration, CommandLine, FromInstruction, Instruction, KeyValue } from "./types.js";

const KEYWORDS = [
  "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label", "maintainer", "onbuild",
  "run", "shell", "stopsignal", "user", "volume", "workdir",
];
const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/u;

function argumentsError(message: string, hint?: string): FrontendError {
  return new FrontendError("KILN_PARSE_ARGUMENTS", message, hint === undefined ? {} : { hint });
}

function exactlyOne(node: InstructionNode, name: string): string {
  if (node.args.length !== 1) throw argumentsError(`Cannot parse ${name}: it requires exactly one argument`);
  return node.args[0] as string;
}

function commandLine(node: InstructionNode, emptyAsNone = false): CommandLine {
  const args = emptyAsNone && node.args.length === 0 ? [] : node.args;
  return { args, prependShell: !node.json };
}

function keyValues(node: InstructionNode, name: string): KeyValue[] {
  if (node.args.length === 0) throw argumentsError(`Cannot parse ${name}: it requires at least one argument`);
  if (node.args.length % 3 !== 0) throw argumentsError(`Cannot parse ${name}: too many arguments`);
  const pairs: KeyValue[] = [];
  for (let i = 0; i < node.args.length; i += 3) {
    const key = node.args[i] as string;
    if (key === "") throw argumentsError(`Cannot parse ${name}: names can not be blank`);
    pairs.push({ key, value: node.args[i + 1] as string, legacy: node.args[i + 2] === "" });
  }
  return pairs;
}

/** FROM [--platform=P] IMAGE [AS NAME] */
export function parseFrom(node: InstructionNode): FromInstruction {
  const args = node.args;
  let name: string | undefined;
  let asKeyword: string | undefined;
  if (args.length === 3 && (args[1] as string).toLowerCase() === "as") {
    name = (args[2] as string).toLowerCase();
    asKeyword = args[1] as string;
    if (!STAGE_NAME.test(name)) {
      throw argumentsError(`Cannot use "${args[2]}" as a stage name: it must start with a letter and contain only letters, digits, "-", "_" and "."`);
    }
  } else if (args.length !== 1) {
    throw argumentsError("Cannot parse FROM: it takes an image and optionally AS NAME", "Write FROM IMAGE or FROM IMAGE AS NAME");
  }
  const flags = parseFlags("FROM", node.flags, { platform: "string" });
  const platform = flags.strings.get("platform");
  return {
    kind: "from",
    ...baseOf(node),
    image: args[0] as string,
    ...(name === undefined ? {} : { name }),
    ...(asKeyword === undefined ? {} : { asKeyword }),
    ...(platform === undefined || platform === "" ? {} : { platform }),
  };
}

/** Turns a syntax node into a typed instruction; throws FrontendError (without a range: the caller adds it). */
export function parseInstruction(node: InstructionNode): FromInstruction | Instruction {
  const base = baseOf(node);
  switch (node.command) {
    case "from":
      return parseFrom(node);
    case "run": {
      const flags = parseFlags("RUN", node.flags, { mount: "strings", network: "string", security: "string" });
      const network = flags.strings.get("network");
      const security = flags.strings.get("security");
      return {
        kind: "run",
        ...base,
        ...commandLine(node),
        heredocs: node.heredocs,
        mounts: flags.lists.get("mount") ?? [],
        ...(network === undefined ? {} : { network }),
        ...(security === undefined ? {} : { security }),
      };
    }
    case "cmd":
      parseFlags("CMD", node.flags, {});
      return { kind: "cmd", ...base, ...commandLine(node) };
    case "entrypoint":
      parseFlags("ENTRYPOINT", node.flags, {});
      return { kind: "entrypoint", ...base, ...commandLine(node, true) };
    case "shell":
      parseFlags("SHELL", node.flags, {});
      if (node.args.length === 0) throw argumentsError("Cannot parse SHELL: it requires at least one argument");
      if (!node.json) throw argumentsError("Cannot parse SHELL: it requires the arguments in JSON form", `Write SHELL ["executable", "parameters"]`);
      return { kind: "shell", ...base, shell: node.args };
    case "copy":
      return parseCopy(node);
    case "add":
      return parseAdd(node);
    case "env":
      parseFlags("ENV", node.flags, {});
      return { kind: "env", ...base, pairs: keyValues(node, "ENV") };
    case "label":
      parseFlags("LABEL", node.flags, {});
      return { kind: "label", ...base, pairs: keyValues(node, "LABEL") };
    case "arg": {
      if (node.args.length === 0) throw argumentsError("Cannot parse ARG: it requires at least one argument");
      const args: ArgDeclaration[] = node.args.map((word) => {
        const eq = word.indexOf("=");
        if (eq === -1) return { key: word };
        if (eq === 0) throw argumentsError("Cannot parse ARG: names can not be blank");
        return { key: word.slice(0, eq), value: word.slice(eq + 1) };
      });
      parseFlags("ARG", node.flags, {});
      return { kind: "arg", ...base, args };
    }
    case "workdir": {
      const path = exactlyOne(node, "WORKDIR");
      parseFlags("WORKDIR", node.flags, {});
      return { kind: "workdir", ...base, path };
    }
    case "user": {
      const user = exactlyOne(node, "USER");
      parseFlags("USER", node.flags, {});
      return { kind: "user", ...base, user };
    }
    case "expose":
      if (node.args.length === 0) throw argumentsError("Cannot parse EXPOSE: it requires at least one argument");
      parseFlags("EXPOSE", node.flags, {});
      return { kind: "expose", ...base, ports: node.args };
    case "volume": {
      if (node.args.length === 0) throw argumentsError("Cannot parse VOLUME: it requires at least one argument");
      parseFlags("VOLUME", node.flags, {});
      const volumes = node.args.map((v) => v.trim());
      if (volumes.some((v) => v === "")) throw argumentsError("Cannot parse VOLUME: a volume can not be an empty string");
      return { kind: "volume", ...base, volumes };
    }
    case "stopsignal":
      return { kind: "stopsignal", ...base, signal: exactlyOne(node, "STOPSIGNAL") };
    case "maintainer": {
      const maintainer = exactlyOne(node, "MAINTAINER");
      parseFlags("MAINTAINER", node.flags, {});
      return { kind: "maintainer", ...base, maintainer };
    }
    case "healthcheck":
      return parseHealthcheck(node);
    case "onbuild": {
      const child = node.child;
      if (child === undefined) throw argumentsError("Cannot parse ONBUILD: it requires at least one argument");
      parseFlags("ONBUILD", node.flags, {});
      const trigger = child.keyword.toUpperCase();
      if (trigger === "ONBUILD") throw argumentsError("Cannot chain ONBUILD via `ONBUILD ONBUILD`");
      if (trigger === "MAINTAINER" || trigger === "FROM") throw argumentsError(`Cannot use ${trigger} as an ONBUILD trigger`);
      let expression = node.original.replace(/^\s*ONBUILD\s*/iu, "");
      for (const heredoc of child.heredocs) expression += `\n${heredoc.content}${heredoc.name}`;
      return { kind: "onbuild", ...base, expression };
    }
    default: {
      const suggestion = closest(node.command, KEYWORDS);
      throw new FrontendError("KILN_PARSE_UNKNOWN_INSTRUCTION", `Cannot parse "${node.keyword}": unknown instruction`, {
        ...(suggestion === undefined ? {} : { hint: `Did you mean ${suggestion.toUpperCase()}?` }),
      });
    }
  }
}

/** The candidate within edit distance 2 of `word`, if any (for "did you mean" hints). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
