import { KilnError, type Definition, type Op } from "../../solver/llb/index.js";

/**
 * BuildKit's entitlements: privileges a build must be granted explicitly (`--allow NAME`).
 * `security.insecure` lets `RUN --security=insecure` run privileged. `network.host` is accepted
 * for compatibility with BuildKit's command lines; kiln does not require it (its default network
 * is the host's already).
 */
export type Entitlement = "security.insecure" | "network.host";

export const ENTITLEMENTS: readonly Entitlement[] = ["security.insecure", "network.host"];

/** A build asked for a privilege it was not granted, or named one that does not exist. */
export class EntitlementError extends KilnError {
  constructor(message: string) {
    super("KILN_ENTITLEMENT", message);
  }
}

/** The entitlement named `text` (`--allow`'s value); throws EntitlementError for an unknown name. */
export function parseEntitlement(text: string): Entitlement {
  const found = ENTITLEMENTS.find((e) => e === text);
  if (found === undefined) throw new EntitlementError(`Cannot allow "${text}": it is not an entitlement (known: ${ENTITLEMENTS.join(", ")})`);
  return found;
}

/** The entitlements `op` needs to run. */
export function opEntitlements(op: Op): Entitlement[] {
  return op.kind === "exec" && op.security === "insecure" ? ["security.insecure"] : [];
}

/** The error for an op that needs `needed` when the build was not granted it. */
export function notAllowed(needed: Entitlement, what: string): EntitlementError {
  return new EntitlementError(
    `Cannot run ${what}: it needs the entitlement "${needed}", which this build was not granted (pass "--allow ${needed}" to kiln build)`,
  );
}

/**
 * Checks, before anything runs (as BuildKit's solver does), that every op of `definition` is
 * covered by `allowed`; throws EntitlementError for the first one that is not.
 */
export function checkEntitlements(definition: Definition, allowed: readonly Entitlement[]): void {
  for (const op of definition.ops.values()) {
    for (const needed of opEntitlements(op)) {
      if (!allowed.includes(needed)) throw notAllowed(needed, describe(op));
    }
  }
}

function describe(op: Op): string {
  if (op.kind !== "exec") return `a ${op.kind} op`;
  const args = op.meta.args;
  // Shell form (`sh -c SCRIPT`) reads as the Dockerfile wrote it.
  const command = args.length === 3 && args[1] === "-c" ? (args[2] ?? "") : args.join(" ");
  return `"RUN --security=insecure ${command}"`;
}
