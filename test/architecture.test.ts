import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, test } from "vitest";

/**
 * The import fences of STYLE.md: data flows cli → frontend → solver → worker → exporter, and the
 * op vocabulary (solver/llb) imports nothing of kiln. A test file may also use test/harness.
 */
const REPO = resolve(import.meta.dirname, "..");

type Part = "solver/llb" | "worker/oci" | "frontend" | "solver" | "worker" | "exporter" | "cli" | "test" | "other";

function partOf(path: string): Part {
  const rel = relative(REPO, path);
  if (rel.startsWith("solver/llb/")) return "solver/llb";
  if (rel.startsWith("worker/oci/")) return "worker/oci";
  for (const part of ["frontend", "solver", "worker", "exporter", "cli", "test"] as const) if (rel.startsWith(`${part}/`)) return part;
  return "other";
}

/** Which parts (and single files) each part may import. */
const ALLOWED: Readonly<Record<Exclude<Part, "other" | "test">, readonly string[]>> = {
  "solver/llb": ["solver/llb/"],
  "worker/oci": ["worker/oci/", "solver/llb/"],
  frontend: ["frontend/", "solver/llb/"],
  solver: ["solver/"],
  worker: ["worker/", "solver/llb/", "solver/op.ts", "solver/progress.ts"],
  exporter: ["exporter/", "worker/", "solver/llb/", "solver/op.ts", "solver/progress.ts"],
  cli: ["cli/", "frontend/", "solver/", "worker/", "exporter/"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(path);
    return /\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]!);
  return specifiers.map((s) => resolve(dirname(file), s).replace(/\.js$/, ".ts").replace(/\.jsx$/, ".tsx"));
}

describe("import fences", () => {
  const files = ["solver", "frontend", "worker", "exporter", "cli"].flatMap((d) => sourceFiles(join(REPO, d)));

  test("finds the source tree", () => {
    expect(files.length).toBeGreaterThan(20);
  });

  test("every import stays inside its part's fence", () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = partOf(file);
      if (from === "other" || from === "test") continue;
      for (const target of relativeImports(file)) {
        const rel = relative(REPO, target);
        if (file.endsWith(".test.ts") && rel.startsWith("test/harness/")) continue;
        const ok = ALLOWED[from].some((allowed) => (allowed.endsWith("/") ? rel.startsWith(allowed) : rel === allowed));
        if (!ok) violations.push(`${relative(REPO, file)} imports ${rel}`);
      }
    }
    expect(violations).toEqual([]);
  });

  test("only the cli's own files import the cli", () => {
    const offenders = files.filter((f) => partOf(f) !== "cli" && relativeImports(f).some((t) => partOf(t) === "cli"));
    expect(offenders.map((f) => relative(REPO, f))).toEqual([]);
  });
});
