// Builds examples/hello with kiln's API, printing progress as it goes; Ctrl-C cancels the build
// (its running containers are killed). Run after `npm run build`, as root:
//
//   node examples/api/build.mjs [CONTEXT] [--base IMAGE]
//
import { build } from "kiln";

const args = process.argv.slice(2);
const baseAt = args.indexOf("--base");
const base = baseAt >= 0 ? args.splice(baseAt, 2)[1] : undefined;
const context = args[0] ?? new URL("../hello", import.meta.url).pathname;

const controller = new AbortController();
process.once("SIGINT", () => controller.abort(new Error("cancelled by Ctrl-C")));

const handle = build({
  context,
  tags: ["hello:api"],
  buildArgs: base === undefined ? {} : { BASE: base },
  labels: { "org.example.built-by": "kiln-api-example" },
  signal: controller.signal,
});

// Progress: the same typed events `kiln build --progress rawjson` prints.
for await (const event of handle) {
  if (event.type === "vertex.started") console.error(`started   ${event.name}`);
  else if (event.type === "vertex.cached") console.error(`cached    ${event.name}`);
  else if (event.type === "vertex.completed") console.error(`done      ${event.name} (${event.time - event.started} ms)`);
  else if (event.type === "vertex.log") process.stderr.write(`          ${event.data}`);
}

try {
  const { digest, config, metadata } = await handle;
  console.log(JSON.stringify({ digest, cmd: config?.config.Cmd, labels: config?.config.Labels, build: metadata["kiln.build.ref"] }, null, 2));
} catch (error) {
  console.error(`build failed: ${error.message}`);
  process.exitCode = 1;
}
