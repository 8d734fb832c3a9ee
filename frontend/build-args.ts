import { formatPlatform, type Platform } from "../solver/llb/index.js";
import { withRange } from "./errors.js";
import type { ArgInstruction } from "./instructions/types.js";
import { ShellWords } from "./shell-words.js";
import type { SourceFile } from "./source-file.js";

/**
 * The automatic platform args (BuildKit's defaultArgs): BUILDPLATFORM, BUILDOS, BUILDARCH,
 * BUILDVARIANT, TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, TARGETSTAGE. They are in
 * scope for FROM lines and reach a stage only when re-declared with ARG. `--build-arg` overrides them.
 */
export function predefinedArgs(target: Platform, build: Platform, targetStage: string, overrides: Readonly<Record<string, string>>): Map<string, string> {
  const values: [string, string][] = [
    ["BUILDPLATFORM", formatPlatform(build)],
    ["BUILDOS", build.os],
    ["BUILDOSVERSION", ""],
    ["BUILDARCH", build.architecture],
    ["BUILDVARIANT", build.variant ?? ""],
    ["TARGETPLATFORM", formatPlatform(target)],
    ["TARGETOS", target.os],
    ["TARGETOSVERSION", ""],
    ["TARGETARCH", target.architecture],
    ["TARGETVARIANT", target.variant ?? ""],
    ["TARGETSTAGE", targetStage === "" ? "default" : targetStage],
  ];
  return new Map(values.map(([k, v]) => [k, overrides[k] ?? v]));
}

/**
 * The global scope for FROM lines and for ARGs re-declared in stages: the predefined args, then
 * each ARG before the first FROM in order: a `--build-arg` value wins, else the default expanded
 * against what came before; a declaration without either stays undefined (and out of the map).
 */
export function globalArgs(
  metaArgs: readonly ArgInstruction[],
  predefined: ReadonlyMap<string, string>,
  buildArgs: Readonly<Record<string, string>>,
  shell: ShellWords,
  source: SourceFile,
): Map<string, string> {
  const scope = new Map(predefined);
  for (const instruction of metaArgs) {
    for (const arg of instruction.args) {
      let value: string | undefined = Object.hasOwn(buildArgs, arg.key) ? buildArgs[arg.key] : undefined;
      if (value === undefined && arg.value !== undefined) {
        try {
          value = shell.expandWord(arg.value, scope).value;
        } catch (error) {
          throw withRange(error, instruction.range, source);
        }
      }
      if (value !== undefined) scope.set(arg.key, value);
    }
  }
  return scope;
}
