import { formatPlatform, normalizePlatform, type ImageSpec, type Platform, type SourceRange } from "../../solver/llb/index.js";
import { globalArgs } from "../build-args.js";
import { ruleUrl } from "../checks.js";
import type { Dockerfile } from "../dockerfile.js";
import { isNormalizedReference } from "../image-reference.js";
import type { ShellWords } from "../shell-words.js";
import { suggestName } from "../suggest.js";
import type { BuildWarning } from "./options.js";

/**
 * BuildKit's UndefinedArgInFrom for one FROM word (image or --platform): each variable it uses
 * that no global ARG declares (with or without a value) and no predefined arg sets, with a "did
 * you mean" among those names. `unmatched` is what the expansion did not find.
 */
export function undefinedArgsInFrom(unmatched: ReadonlySet<string>, scope: ReadonlyMap<string, string>, dockerfile: Dockerfile, range: SourceRange): BuildWarning[] {
  if (unmatched.size === 0) return [];
  const known = new Set(scope.keys());
  for (const instruction of dockerfile.metaArgs) for (const arg of instruction.args) known.add(arg.key);
  const out: BuildWarning[] = [];
  for (const name of unmatched) {
    if (known.has(name)) continue;
    const suggestion = suggestName(name, known, true);
    out.push({
      rule: "UndefinedArgInFrom",
      message: `FROM argument '${name}' is not declared${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}`,
      ranges: [range],
      url: ruleUrl("UndefinedArgInFrom"),
    });
  }
  return out;
}

/**
 * BuildKit's InvalidDefaultArgInFrom: with the global ARGs at their defaults (no `--build-arg`
 * for them), a FROM image that expands to an empty or malformed reference, so the Dockerfile only
 * builds when the caller passes the right build arg. Checks every stage, reachable or not; gives
 * up quietly when a default does not expand (lowering reports that itself).
 */
export function invalidDefaultArgsInFrom(dockerfile: Dockerfile, predefined: ReadonlyMap<string, string>, shell: ShellWords): BuildWarning[] {
  let defaults: Map<string, string>;
  try {
    defaults = globalArgs(dockerfile.metaArgs, predefined, {}, shell, dockerfile.source);
  } catch {
    return [];
  }
  const out: BuildWarning[] = [];
  for (const stage of dockerfile.stages) {
    let image: string;
    try {
      image = shell.expandWord(stage.from.image, defaults).value;
    } catch {
      return out;
    }
    if (isNormalizedReference(image)) continue;
    out.push({
      rule: "InvalidDefaultArgInFrom",
      message: `Default value for ARG ${stage.from.image} results in empty or invalid base image name`,
      ranges: [stage.from.range],
      url: ruleUrl("InvalidDefaultArgInFrom"),
    });
  }
  return out;
}

/**
 * BuildKit's InvalidBaseImagePlatform for one FROM (or `--from`) that uses `ref`: the image's
 * config names another OS or architecture than the one asked for (a single-platform image has no
 * index to choose from), so its RUN steps would need emulation or give an image of the wrong
 * architecture. Undefined when the platforms agree or the config names none.
 */
export function baseImagePlatformMismatch(ref: string, expected: Platform, config: ImageSpec, range: SourceRange): BuildWarning | undefined {
  if (config.os === "" || config.architecture === "") return undefined;
  const actual = normalizePlatform(config.variant === undefined ? { os: config.os, architecture: config.architecture } : { os: config.os, architecture: config.architecture, variant: config.variant });
  // BuildKit compares OS and architecture only: a variant mismatch (arm/v6 for arm/v7) is no finding.
  const wanted = normalizePlatform(expected);
  if (actual.os === wanted.os && actual.architecture === wanted.architecture) return undefined;
  return {
    rule: "InvalidBaseImagePlatform",
    message: `Base image ${ref} was pulled with platform "${formatPlatform(actual)}", expected "${formatPlatform(expected)}" for current build`,
    ranges: [range],
    url: ruleUrl("InvalidBaseImagePlatform"),
  };
}
