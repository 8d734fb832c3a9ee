// Bundles the compiled CLI (dist/cli/main.js and everything it imports) into a few files under
// dist/bundle/, which bin/kiln loads. Run by `npm run build` after tsc.
//
// Why: Node 20 resolves, reads and compiles each ES module separately; the ~190 modules of a
// `kiln build` cost about 200 ms of every invocation, more than the rest of a fully cached
// build. A bundle is a handful of files. dist/ keeps the per-file output too: the package's
// exports map (the API) points there.
//
// The bundle is CommonJS (main.cjs and its chunks) so that bin/kiln can compile it with V8's code
// cache (vm.Script cachedData; Node 20 has no compile cache for ES modules): compiling the bundle
// was about 100 ms of every invocation, the cache makes it a few.
//
// Kept out of the main bundle: koffi (a native addon, loaded from node_modules when used) and
// the tty progress view with ink and react. ink has top-level await, which require() cannot
// load, so the view is a separate ES module bundle (progress-tty.mjs) that the CommonJS code
// reaches with import(); ink and react come from node_modules. Dynamic imports stay split, so
// `kiln --version` loads only the main chunk.
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "rolldown";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(repo, "dist", "bundle");
const ui = [/^ink(\/|$)/, /^react(\/|$)/, /^react-dom(\/|$)/];
const ttyView = /progress-tty\.js$/;
await rm(out, { recursive: true, force: true });
await build({
  input: join(repo, "dist", "cli", "main.js"),
  platform: "node",
  external: [/^koffi(\/|$)/, ...ui, ttyView],
  logLevel: "warn",
  output: {
    dir: out,
    format: "cjs",
    // dist/bundle/ sits at the depth of dist/cli/, so main's `../../package.json` still resolves.
    entryFileNames: "[name].cjs",
    chunkFileNames: "[name]-[hash].cjs",
    paths: (id) => (ttyView.test(id) ? "./progress-tty.mjs" : id),
    sourcemap: false,
  },
});
await build({
  input: { "progress-tty": join(repo, "dist", "cli", "ui", "progress-tty.js") },
  platform: "node",
  external: ui,
  logLevel: "warn",
  output: { dir: out, format: "esm", entryFileNames: "[name].mjs", chunkFileNames: "tty-[name]-[hash].mjs", sourcemap: false },
});
