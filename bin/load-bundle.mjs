// Loads kiln's CommonJS bundle (dist/bundle/*.cjs, made by scripts/bundle-cli.mjs) with V8's code
// cache: each chunk is compiled through vm.Script with the cached data of an earlier run, so a
// command does not parse and compile ~1 MB of JavaScript again (about 100 ms of every kiln
// invocation on a 2-core VM; Node 20 has no compile cache of its own for modules).
//
// The cache lives in dist/bundle/.code-cache/, one file per chunk and kind of command (build and
// serve run far more code than the other commands, so they keep their own). It is written after
// the command, only when missing or rejected (V8 rejects data made from other source or by
// another V8), to a temp name then renamed. A cache that cannot be read or written changes
// nothing but speed.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import vm from "node:vm";

const DYNAMIC_IMPORT = /\bimport\(["'`]/;

/** Requires `entry` (an absolute path in the bundle's directory) with the code cache; `save` writes what is new. */
export function loadBundle(entry, argv) {
  const dir = dirname(entry);
  const cacheDir = join(dir, ".code-cache");
  const kind = argv.includes("build") || argv.includes("serve") ? "build" : "cli";
  const stale = [];
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename, ...rest) {
    // A chunk with a dynamic import (the one reaching the tty view, an ES module) is left to Node:
    // import() from a vm.Script needs an experimental option in Node 20.
    if (dirname(filename) !== dir || !filename.endsWith(".cjs") || DYNAMIC_IMPORT.test(content)) return compile.call(this, content, filename, ...rest);
    const cacheFile = join(cacheDir, `${basename(filename)}.${kind}.cache`);
    let cachedData;
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // No cache yet.
    }
    const script = new vm.Script(Module.wrap(content), { filename, ...(cachedData === undefined ? {} : { cachedData }) });
    if (cachedData === undefined || script.cachedDataRejected === true) stale.push({ script, cacheFile });
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(this.exports, this.exports, createRequire(filename), this, filename, dir);
  };
  const exports = createRequire(entry)(entry);
  return {
    main: exports.main,
    /** Writes the cache of every chunk compiled without one (after the command: it then holds the functions it ran). */
    save() {
      if (stale.length === 0) return;
      try {
        mkdirSync(cacheDir, { recursive: true });
        for (const { script, cacheFile } of stale.splice(0)) {
          const temp = `${cacheFile}.${process.pid}.tmp`;
          writeFileSync(temp, script.createCachedData());
          renameSync(temp, cacheFile);
        }
      } catch {
        // A read-only install runs without a cache.
      }
    },
  };
}
