export { createSourceFile } from "./source-file.js";
export type { SourceFile } from "./source-file.js";
export { FrontendError, withRange } from "./errors.js";
export { parseDockerfile } from "./dockerfile.js";
export type { Dockerfile, Stage } from "./dockerfile.js";
export type { CheckDirective, Directive } from "./directives.js";
export { parseCheckDirective } from "./directives.js";
export type { Heredoc } from "./heredoc.js";
export type {
  AddInstruction, ArgDeclaration, ArgInstruction, CmdInstruction, CommandLine, CopyInstruction, EntrypointInstruction,
  EnvInstruction, ExposeInstruction, FromInstruction, HealthcheckInstruction, InlineSource, Instruction, KeyValue,
  LabelInstruction, MaintainerInstruction, OnbuildInstruction, RunInstruction, ShellInstruction, StopSignalInstruction,
  UserInstruction, VolumeInstruction, WorkdirInstruction,
} from "./instructions/types.js";
export { ShellWords, ShellWordsError } from "./shell-words.js";
export type { ExpandedWord, ShellEnv, ShellWordsOptions } from "./shell-words.js";
export { dockerignoreMatcher, excludingPattern, parseDockerignore } from "./dockerignore.js";
export type { IgnorePattern } from "./dockerignore.js";
export { lowerDockerfile } from "./lower/index.js";
export { contextKey } from "./named-contexts.js";
export type { NamedContext } from "./named-contexts.js";
export type { BuildWarning, ImageResolver, LoweredBuild, LowerOptions } from "./lower/options.js";
