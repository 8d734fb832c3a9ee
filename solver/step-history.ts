import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256 } from "./llb/index.js";
import type { StepRecord } from "./cache-explain.js";
import type { PlannedVertex } from "./plan.js";

/**
 * The last run of each step, by a stable identity that survives changes to the step's key, so a
 * later build can say why the key changed (`--explain-cache`). Advisory: a record that is missing,
 * torn or foreign reads as "no earlier build"; writes are atomic renames without fsync (a record
 * lost to a crash costs an explanation, never a wrong build).
 */
export interface StepHistory {
  load(scope: string, identity: string): Promise<StepRecord | undefined>;
  save(scope: string, record: StepRecord): Promise<void>;
}

const FORMAT = "kiln-step-v1";

/**
 * Opens the history in `dir` (created on the first save). Layout: `dir/ab/abcd….json`, the
 * sha256 of scope and identity, sharded by its first two hex digits; `dir/tmp/` for writes.
 */
export function openStepHistory(dir: string): StepHistory {
  const pathOf = (scope: string, identity: string): { shard: string; file: string } => {
    const hex = sha256(`${scope}\0${identity}`).slice("sha256:".length);
    return { shard: join(dir, hex.slice(0, 2)), file: join(dir, hex.slice(0, 2), `${hex}.json`) };
  };
  const made = new Set<string>();
  const ensureDir = async (path: string): Promise<void> => {
    if (made.has(path)) return;
    await mkdir(path, { recursive: true });
    made.add(path);
  };
  return {
    async load(scope, identity) {
      let text: string;
      try {
        text = await readFile(pathOf(scope, identity).file, "utf8");
      } catch {
        return undefined;
      }
      try {
        const value = JSON.parse(text) as { format?: unknown; scope?: unknown; record?: StepRecord };
        if (value.format !== FORMAT || value.scope !== scope || value.record?.identity !== identity) return undefined;
        return value.record;
      } catch {
        return undefined;
      }
    },
    async save(scope, record) {
      const { shard, file } = pathOf(scope, record.identity);
      const tmp = join(dir, "tmp");
      await ensureDir(tmp);
      await ensureDir(shard);
      const temp = join(tmp, `${randomBytes(8).toString("hex")}.${process.pid}`);
      try {
        await writeFile(temp, JSON.stringify({ format: FORMAT, scope, record }));
        await rename(temp, file);
      } catch (error) {
        made.clear(); // The directories may have been removed under a long-lived process.
        await unlink(temp).catch(() => undefined);
        throw error;
      }
    },
  };
}

/**
 * A step's identity across builds, which its key does not change:
 * - a Dockerfile step: its source file's name, stage (`kiln.stage`) and step number (`[stage 2/5]`),
 *   so editing its command, a build arg or a file it copies keeps the identity;
 * - a source without a step number: its identifier without a pinned digest (`local://context`,
 *   `docker-image://busybox:latest`) and platform;
 * - anything else: its progress name.
 */
export function stepIdentity(planned: PlannedVertex): string {
  const { metadata, op } = planned.vertex;
  const stage = metadata.description?.["kiln.stage"];
  const step = /^\[(?:[^\]]*?\s)?\s*(\d+)\/\d+\] /.exec(planned.name)?.[1];
  if (stage !== undefined && step !== undefined) return `step\0${planned.locations[0]?.source.name ?? ""}\0${stage}\0${step}`;
  if (op.kind === "source") {
    const at = op.identifier.indexOf("@sha256:");
    return `source\0${at < 0 ? op.identifier : op.identifier.slice(0, at)}\0${JSON.stringify(op.platform ?? null)}`;
  }
  return `name\0${planned.name}`;
}
