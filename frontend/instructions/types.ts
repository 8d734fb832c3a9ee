import type { SourceRange } from "../../solver/llb/index.js";
import type { Heredoc } from "../heredoc.js";

/** What every typed instruction carries: where it is and how it was written. Words are unexpanded. */
interface InstructionBase {
  readonly range: SourceRange;
  /** The keyword as written. */
  readonly keyword: string;
  /** The logical source line (BuildKit's `String()` of a command), used for progress names. */
  readonly original: string;
  readonly comments: readonly string[];
}

/** A command line in shell form (`args` is one string, run by the shell) or exec form (JSON). */
export interface CommandLine {
  readonly args: readonly string[];
  readonly prependShell: boolean;
}

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Written as `KEY VALUE` (the legacy form). */
  readonly legacy: boolean;
}

export interface FromInstruction extends InstructionBase {
  readonly kind: "from";
  readonly image: string;
  /** Lower-cased stage name, or undefined. */
  readonly name?: string;
  readonly asKeyword?: string;
  readonly platform?: string;
}

export interface RunInstruction extends InstructionBase, CommandLine {
  readonly kind: "run";
  readonly heredocs: readonly Heredoc[];
  readonly mounts: readonly string[];
  readonly network?: string;
  readonly security?: string;
}

export interface CmdInstruction extends InstructionBase, CommandLine {
  readonly kind: "cmd";
}

export interface EntrypointInstruction extends InstructionBase, CommandLine {
  readonly kind: "entrypoint";
}

export interface ShellInstruction extends InstructionBase {
  readonly kind: "shell";
  readonly shell: readonly string[];
}

/** A COPY/ADD source that is a heredoc: a file named `path` with `data`. */
export interface InlineSource {
  readonly path: string;
  readonly data: string;
  readonly expand: boolean;
}

interface CopyAddBase extends InstructionBase {
  readonly sources: readonly string[];
  readonly inlineSources: readonly InlineSource[];
  readonly dest: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly exclude: readonly string[];
}

export interface CopyInstruction extends CopyAddBase {
  readonly kind: "copy";
  readonly from?: string;
  readonly parents: boolean;
}

export interface AddInstruction extends CopyAddBase {
  readonly kind: "add";
  readonly keepGitDir?: boolean;
  readonly checksum?: string;
  readonly unpack?: boolean;
}

export interface EnvInstruction extends InstructionBase {
  readonly kind: "env";
  readonly pairs: readonly KeyValue[];
}

export interface LabelInstruction extends InstructionBase {
  readonly kind: "label";
  readonly pairs: readonly KeyValue[];
}

export interface ArgDeclaration {
  readonly key: string;
  /** The default, unexpanded; undefined when none is given. */
  readonly value?: string;
}

export interface ArgInstruction extends InstructionBase {
  readonly kind: "arg";
  readonly args: readonly ArgDeclaration[];
}

export interface WorkdirInstruction extends InstructionBase {
  readonly kind: "workdir";
  readonly path: string;
}

export interface UserInstruction extends InstructionBase {
  readonly kind: "user";
  readonly user: string;
}

export interface ExposeInstruction extends InstructionBase {
  readonly kind: "expose";
  readonly ports: readonly string[];
}

export interface VolumeInstruction extends InstructionBase {
  readonly kind: "volume";
  readonly volumes: readonly string[];
}

export interface StopSignalInstruction extends InstructionBase {
  readonly kind: "stopsignal";
  readonly signal: string;
}

export interface MaintainerInstruction extends InstructionBase {
  readonly kind: "maintainer";
  readonly maintainer: string;
}

export interface OnbuildInstruction extends InstructionBase {
  readonly kind: "onbuild";
  /** The trigger as it will be stored in the image config (`RUN make`). */
  readonly expression: string;
}

/** HEALTHCHECK; durations in nanoseconds, absent when not given. */
export interface HealthcheckInstruction extends InstructionBase {
  readonly kind: "healthcheck";
  /** ["NONE"] for HEALTHCHECK NONE, else ["CMD", args…] or ["CMD-SHELL", cmd]. */
  readonly test: readonly string[];
  readonly interval?: number;
  readonly timeout?: number;
  readonly startPeriod?: number;
  readonly startInterval?: number;
  readonly retries?: number;
}

/** Every Dockerfile instruction except FROM, which starts a Stage. */
export type Instruction =
  | RunInstruction | CmdInstruction | EntrypointInstruction | ShellInstruction | CopyInstruction | AddInstruction
  | EnvInstruction | LabelInstruction | ArgInstruction | WorkdirInstruction | UserInstruction | ExposeInstruction
  | VolumeInstruction | StopSignalInstruction | MaintainerInstruction | OnbuildInstruction | HealthcheckInstruction;
