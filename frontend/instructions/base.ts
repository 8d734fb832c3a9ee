import type { InstructionNode } from "../parser.js";

/** The fields every typed instruction copies from its node. */
export function baseOf(node: InstructionNode): { range: InstructionNode["range"]; keyword: string; original: string; comments: readonly string[] } {
  return { range: node.range, keyword: node.keyword, original: node.original.trim(), comments: node.comments };
}
