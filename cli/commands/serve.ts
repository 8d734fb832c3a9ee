import type { Engine } from "../api.js";
import { serve } from "../daemon/server.js";
import { defaultAddress } from "../daemon/protocol.js";
import { UsageError } from "../options/usage-error.js";
import { parseEntitlement, type Entitlement } from "../../worker/ops/entitlements.js";
import type { CommandContext } from "./command.js";

export const serveHelp = `Usage: kiln serve [--addr unix:///PATH] [--allow-insecure-entitlement NAME]...

Run kiln as a daemon: builds arrive over a unix socket (from "kiln --addr ADDR build ..." or
with KILN_HOST=ADDR) and share one engine and its cache. Only the socket's owner can use it
(mode 0600 in a 0700 directory). A client that disconnects has its build cancelled.

The daemon keeps a copy of each client context (per user, context and Dockerfile directory; the
16 most recently used, under STATE_ROOT/daemon/sync): a rebuild sends only the files that are new
or changed, and the daemon deletes what the client no longer has. "kiln --addr ADDR" also runs
images, rmi, du, prune, import and load on the daemon, against its state root.

Options:
  --addr ADDR   Where to listen (default: unix:///run/kiln/kiln.sock as root,
                unix://$XDG_RUNTIME_DIR/kiln/kiln.sock otherwise); the global --addr works too
  --allow-insecure-entitlement NAME
                Let clients ask for entitlement NAME with "build --allow NAME" (repeatable;
                security.insecure, network.host), as buildkitd's flag: without it such a build
                is refused before its context is sent
`;

/** `kiln serve`: runs until SIGINT or SIGTERM, then exits 0. */
export async function runServe(argv: readonly string[], context: CommandContext, openEngine: () => Promise<Engine>): Promise<number> {
  let addr = context.addr;
  const allowed: Entitlement[] = [];
  const allow = (name: string | undefined): void => {
    if (name === undefined || name === "") throw new UsageError("--allow-insecure-entitlement needs an entitlement name");
    try {
      allowed.push(parseEntitlement(name));
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  };
  const args = [...argv];
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg === "--addr") {
      addr = args.shift();
      if (addr === undefined) throw new UsageError("--addr needs an address");
    } else if (arg.startsWith("--addr=")) addr = arg.slice("--addr=".length);
    else if (arg === "--allow-insecure-entitlement") allow(args.shift());
    else if (arg.startsWith("--allow-insecure-entitlement=")) allow(arg.slice("--allow-insecure-entitlement=".length));
    else throw new UsageError(`"kiln serve" does not take "${arg}"`);
  }
  const engine = await openEngine();
  const daemon = await serve(engine, addr ?? defaultAddress(), { log: (line) => context.stderr(`${new Date().toISOString()} ${line}\n`), allowedEntitlements: allowed });
  context.stderr(`kiln daemon listening on unix://${daemon.path} (state root ${engine.root})\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await daemon.close();
  await engine.close();
  return 0;
}
