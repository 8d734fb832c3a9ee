// Bundles the compiled CLI (dist/cli/main.js and everything it imports) into a few files under
// dist/bundle/, which bin/kiln loads. Run by `npm run build` after tsc.
//
// Why: Node 20 resolves, reads and compiles each ES module separately; the ~190 modules of a
// `kiln build` cost about 200 ms of every invocation, more than the rest of a fully cached
// build. A bundle is a handful of files. dist/ keeps the per-file output too: the package's
// exports map (the API) points there.
//
// Kept out of the bundle, loaded from node_modules when used: koffi (a native addon) and ink and
// react (the tty progress view only: a dynamic import away from everything else).
// Dynamic imports stay split, so `kiln --version` loads only the main chunk.
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "rolldown";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(repo, "dist", "bundle");
await rm(out, { recursive: true, force: true });
await build({
  input: join(repo, "dist", "cli", "main.js"),
  platform: "node",
  external: [/^koffi(\/|$)/, /^ink(\/|$)/, /^react(\/|$)/, /^react-dom(\/|$)/],
  logLevel: "warn",
  output: {
    dir: out,
    format: "esm",
    // dist/bundle/ sits at the depth of dist/cli/, so main.js's `../../package.json` still resolves.
    entryFileNames: "[name].js",
    chunkFileNames: "[name]-[hash].js",
    sourcemap: false,
  },
});
