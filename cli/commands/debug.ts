import { describeOp } from "../../solver/index.js";
import { opInputs, serializeDefinition, type Definition } from "../../solver/llb/index.js";
import type { Engine } from "../api.js";
import { parseBuildArgs } from "../options/build-request.js";
import { UsageError } from "../options/usage-error.js";
import type { CommandContext } from "./command.js";

export const debugHelp = `Usage: kiln debug dump-llb [--dot] [BUILD OPTIONS] CONTEXT

Print the build definition (the op graph) that "kiln build" with the same options would run,
without running it: as canonical JSON (the form whose op digests the cache uses), or with --dot
as a Graphviz graph ("kiln debug dump-llb --dot . | dot -Tsvg > llb.svg").

Takes every "kiln build" option, in docker build's or buildctl's spelling.
`;

/** `kiln debug SUBCOMMAND`: only dump-llb so far. */
export async function runDebug(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "dump-llb") throw new UsageError(sub === undefined ? '"kiln debug" needs a subcommand: dump-llb' : `unknown debug subcommand "${sub}"; try dump-llb`);
  const dot = rest.includes("--dot");
  const { options } = parseBuildArgs(rest.filter((a) => a !== "--dot"));
  const engine = await openEngine();
  try {
    const lowered = await engine.lower(options);
    context.stdout(dot ? definitionDot(lowered.definition) : `${JSON.stringify(JSON.parse(serializeDefinition(lowered.definition)), null, 2)}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

/** The definition as a Graphviz digraph: one box per op (its progress name), edges from inputs, the head marked. */
export function definitionDot(definition: Definition): string {
  const id = (digest: string): string => `"${digest.slice("sha256:".length, "sha256:".length + 12)}"`;
  const quote = (text: string): string => `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
  const lines = ["digraph llb {", "  rankdir=BT;", "  node [shape=box, fontname=monospace];"];
  for (const [digest, op] of definition.ops) {
    const name = definition.metadata.get(digest)?.name ?? describeOp(op);
    const label = `${op.kind}: ${name.length > 80 ? `${name.slice(0, 77)}...` : name}\n${digest.slice(0, 19)}`;
    const head = definition.head?.digest === digest ? ", style=bold, color=blue" : "";
    lines.push(`  ${id(digest)} [label=${quote(label)}${head}];`);
    for (const [index, input] of opInputs(op).entries()) lines.push(`  ${id(input.digest)} -> ${id(digest)} [label="${index}"];`);
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}
