import type { Directive } from "./directives.js";
import { FrontendError, withRange } from "./errors.js";
import type { ArgInstruction, FromInstruction, Instruction } from "./instructions/types.js";
import { parseInstruction } from "./instructions/parse-instruction.js";
import { parseSyntax, type ParseWarning } from "./parser.js";
import type { SourceFile } from "./source-file.js";

/** A build stage: its FROM and the instructions up to the next FROM. */
export interface Stage {
  /** 0-based position among the stages. */
  readonly index: number;
  readonly from: FromInstruction;
  readonly instructions: readonly Instruction[];
}

/** A parsed Dockerfile: typed, with ranges, nothing expanded or resolved yet. */
export interface Dockerfile {
  readonly source: SourceFile;
  readonly directives: readonly Directive[];
  readonly escapeToken: string;
  /** ARG instructions before the first FROM (global build arguments). */
  readonly metaArgs: readonly ArgInstruction[];
  readonly stages: readonly Stage[];
  readonly parseWarnings: readonly ParseWarning[];
}

/**
 * Parses a Dockerfile into stages of typed instructions. Throws FrontendError carrying the
 * instruction's range and `source` for any syntax problem.
 */
export function parseDockerfile(source: SourceFile): Dockerfile {
  let tree;
  try {
    tree = parseSyntax(source);
  } catch (error) {
    if (error instanceof FrontendError && error.source === undefined) throw withRange(error, [], source);
    throw error;
  }
  const metaArgs: ArgInstruction[] = [];
  const stages: { index: number; from: FromInstruction; instructions: Instruction[] }[] = [];
  for (const node of tree.nodes) {
    let instruction;
    try {
      instruction = parseInstruction(node);
    } catch (error) {
      throw withRange(error, node.range, source);
    }
    if (instruction.kind === "from") {
      stages.push({ index: stages.length, from: instruction, instructions: [] });
      continue;
    }
    const current = stages[stages.length - 1];
    if (current === undefined) {
      if (instruction.kind === "arg") {
        metaArgs.push(instruction);
        continue;
      }
      throw new FrontendError("KILN_PARSE_NO_STAGE", `Cannot use ${node.keyword.toUpperCase()} before the first FROM: only ARG may come before it`, {
        ranges: [node.range],
        source,
        hint: "Start the Dockerfile with FROM (ARG lines may come first)",
      });
    }
    current.instructions.push(instruction);
  }
  if (stages.length === 0) {
    throw new FrontendError("KILN_PARSE_NO_STAGE", "Cannot build this Dockerfile: it has no FROM instruction", {
      ranges: [source.lineRange(1, Math.max(1, source.lineCount))],
      source,
    });
  }
  return { source, directives: tree.directives, escapeToken: tree.escapeToken, metaArgs, stages, parseWarnings: tree.warnings };
}
