import { cleanPath } from "../../solver/llb/index.js";

/** `p` made absolute against `workdir` (BuildKit's pathRelativeToWorkingDir), a trailing "/" kept. */
export function resolveDest(workdir: string, p: string): string {
  const input = p === "" || p === "." ? "./" : p;
  const trailing = input.endsWith("/") || input.endsWith("/.");
  const joined = input.startsWith("/") ? cleanPath(input) : cleanPath(`${workdir}/${input}`);
  return trailing && joined !== "/" ? `${joined}/` : joined;
}

/** A source path cleaned and made absolute ("./a/../b" → "/b"). */
export function resolveSource(p: string): string {
  return cleanPath(`/${p}`);
}

/** WORKDIR semantics: absolute paths replace, relative ones join the current directory. */
export function resolveWorkdir(current: string, p: string): string {
  return p.startsWith("/") ? cleanPath(p) : cleanPath(`${current === "" ? "/" : current}/${p}`);
}
