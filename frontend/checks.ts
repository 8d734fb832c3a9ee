import type { SourceRange } from "../solver/llb/index.js";
import type { Dockerfile } from "./dockerfile.js";
import type { Instruction } from "./instructions/types.js";
import type { BuildWarning } from "./lower/options.js";

/** BuildKit's URL for a rule: `https://docs.docker.com/go/dockerfile/rule/<kebab-case name>/`. */
export function ruleUrl(rule: string): string {
  return `https://docs.docker.com/go/dockerfile/rule/${rule.replace(/([a-z])([A-Z])/gu, "$1-$2").replace(/([A-Z])([A-Z][a-z])/gu, "$1-$2").toLowerCase()}/`;
}

function finding(rule: string, message: string, range: SourceRange): BuildWarning {
  return { rule, message, ranges: [range], url: ruleUrl(rule) };
}

const RESERVED_STAGE_NAMES = new Set(["context", "scratch"]);
/** BuildKit's secretsRegexp and its allow-list for "public" names. */
const SECRET_NAME = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/iu;
const PUBLIC_NAME = /(?:_|^)public(?:_|$)/iu;
const SINGLE_USE = new Set(["cmd", "entrypoint", "healthcheck"]);

const selfConsistent = (word: string): boolean => word === word.toLowerCase() || word === word.toUpperCase();

/**
 * The build checks that need only the parsed Dockerfile (BuildKit's names, messages and URLs):
 * StageNameCasing, FromAsCasing, ConsistentInstructionCasing, DuplicateStageName,
 * ReservedStageName, MultipleInstructionsDisallowed, SecretsUsedInArgOrEnv,
 * FromPlatformFlagConstDisallowed, RedundantTargetPlatform and WorkdirRelativePath. Checks that
 * need expansion or images run while lowering. Findings come in Dockerfile order per rule.
 */
export function syntaxChecks(dockerfile: Dockerfile): BuildWarning[] {
  const out: BuildWarning[] = [];
  const keywords: { keyword: string; range: SourceRange }[] = [];
  for (const arg of dockerfile.metaArgs) keywords.push({ keyword: arg.keyword, range: arg.range });
  for (const stage of dockerfile.stages) {
    keywords.push({ keyword: stage.from.keyword, range: stage.from.range });
    for (const instruction of stage.instructions) keywords.push({ keyword: instruction.keyword, range: instruction.range });
  }
  // ConsistentInstructionCasing: each keyword in one case, and in the case most keywords use.
  let lower = 0;
  let upper = 0;
  const isLower: boolean[] = [];
  const isUpper: boolean[] = [];
  for (const { keyword } of keywords) {
    const l = keyword === keyword.toLowerCase();
    const u = keyword === keyword.toUpperCase();
    isLower.push(l);
    isUpper.push(u);
    if (l) lower++;
    else if (u) upper++;
  }
  const majorityLower = lower > upper;
  const expected = majorityLower ? "lowercase" : "uppercase";
  keywords.forEach(({ keyword, range }, i) => {
    if (majorityLower ? !isLower[i] : !isUpper[i]) out.push(finding("ConsistentInstructionCasing", `Command '${keyword}' should match the case of the command majority (${expected})`, range));
  });

  const names = new Set<string>();
  for (const stage of dockerfile.stages) {
    const from = stage.from;
    if (from.name !== undefined) {
      const written = from.original.trim().split(/\s+/u).pop() ?? from.name;
      if (written !== written.toLowerCase()) out.push(finding("StageNameCasing", `Stage name '${written}' should be lowercase`, from.range));
      if (from.asKeyword !== undefined) {
        const fromLower = from.keyword === from.keyword.toLowerCase();
        const asLower = from.asKeyword === from.asKeyword.toLowerCase();
        if (selfConsistent(from.keyword) && selfConsistent(from.asKeyword) && fromLower !== asLower) {
          out.push(finding("FromAsCasing", `'${from.asKeyword}' and '${from.keyword}' keywords' casing do not match`, from.range));
        }
      }
      if (RESERVED_STAGE_NAMES.has(from.name)) out.push(finding("ReservedStageName", `Stage name should not use the same name as reserved stage "${from.name}"`, from.range));
      if (names.has(from.name)) out.push(finding("DuplicateStageName", `Duplicate stage name "${from.name}", stage names should be unique`, from.range));
      names.add(from.name);
    }
    if (from.platform !== undefined) {
      if (/^\$(?:\{TARGETPLATFORM\}|TARGETPLATFORM)$/u.test(from.platform)) {
        out.push(finding("RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior", from.range));
      } else if (!from.platform.includes("$")) {
        out.push(finding("FromPlatformFlagConstDisallowed", `FROM --platform flag should not use constant value "${from.platform}"`, from.range));
      }
    }
    out.push(...stageChecks(stage.instructions));
  }
  for (const arg of dockerfile.metaArgs) out.push(...secretChecks(arg));
  return out;
}

function stageChecks(instructions: readonly Instruction[]): BuildWarning[] {
  const out: BuildWarning[] = [];
  const lastSeen = new Map<string, Instruction>();
  let workdirSet = false;
  for (const instruction of instructions) {
    if (SINGLE_USE.has(instruction.kind)) {
      const earlier = lastSeen.get(instruction.kind);
      if (earlier !== undefined) {
        const name = instruction.kind.toUpperCase();
        out.push(finding("MultipleInstructionsDisallowed", `Multiple ${name} instructions should not be used in the same stage because only the last one will be used`, earlier.range));
      }
      lastSeen.set(instruction.kind, instruction);
    }
    if (instruction.kind === "workdir") {
      if (!workdirSet && !instruction.path.startsWith("/") && !instruction.path.startsWith("$")) {
        out.push(finding("WorkdirRelativePath", `Relative workdir "${instruction.path}" can have unexpected results if the base image changes`, instruction.range));
      }
      workdirSet = true;
    }
    if (instruction.kind === "arg" || instruction.kind === "env") out.push(...secretChecks(instruction));
  }
  return out;
}

function secretChecks(instruction: Instruction): BuildWarning[] {
  if (instruction.kind !== "arg" && instruction.kind !== "env") return [];
  const keys = instruction.kind === "arg" ? instruction.args.map((a) => a.key) : instruction.kind === "env" ? instruction.pairs.map((p) => p.key) : [];
  const name = instruction.kind.toUpperCase();
  return keys
    .filter((key) => SECRET_NAME.test(key) && !PUBLIC_NAME.test(key))
    .map((key) => finding("SecretsUsedInArgOrEnv", `Do not use ARG or ENV instructions for sensitive data (${name} "${key}")`, instruction.range));
}
