import { canonicalJson } from "./canonical.js";
import { isDigest, sha256, type Digest } from "./digest.js";
import type { Op, OpInput, OpMetadata } from "./ops.js";
import type { SourceInfo, SourceLocation, SourceRange } from "./source-map.js";

/**
 * A build graph: ops by digest in dependency order (every op after its inputs, the head's op
 * last), what rides beside each op, and the output that is the build's result (null: scratch).
 * Equal ops are one entry wherever they came from.
 */
export interface Definition {
  readonly ops: ReadonlyMap<Digest, Op>;
  readonly metadata: ReadonlyMap<Digest, OpMetadata>;
  readonly locations: ReadonlyMap<Digest, readonly SourceLocation[]>;
  readonly head: OpInput | null;
}

/** The digest of an op: sha256 of its canonical JSON. Metadata and source locations are not part of it. */
export function opDigest(op: Op): Digest {
  return sha256(canonicalJson(op));
}

/**
 * What an op computes apart from which ops feed it: the digest of the op with each input reduced
 * to its output index. A runner's cache map starts from this, because inputs enter a cache key
 * through their own keys or content checksums; the op digest, which names its inputs, would make
 * a COPY's key change whenever its source stage's definition did, even when the copied files did not.
 * An exec op's `meta.proxyEnv` is left out too (see ExecMeta).
 */
export function opCacheDigest(op: Op): Digest {
  if (op.kind === "source") return opDigest(op);
  const inputs = op.inputs.map((input) => ({ output: input.output }));
  if (op.kind === "exec" && op.meta.proxyEnv !== undefined) {
    // Proxy settings stay out of cache keys, as BuildKit's ExecOp.CacheMap clears Meta.ProxyEnv.
    const { proxyEnv: _, ...meta } = op.meta;
    return sha256(canonicalJson({ ...op, inputs, meta }));
  }
  return sha256(canonicalJson({ ...op, inputs }));
}

/** The inputs of any op (source ops have none). */
export function opInputs(op: Op): readonly OpInput[] {
  return op.kind === "source" ? [] : op.inputs;
}

interface SerializedOp {
  readonly digest: Digest;
  readonly op: Op;
  readonly metadata?: OpMetadata;
  readonly locations?: readonly { readonly source: number; readonly ranges: readonly SourceRange[] }[];
}

interface SerializedDefinition {
  readonly version: 1;
  readonly head: OpInput | null;
  readonly ops: readonly SerializedOp[];
  readonly sources: readonly SourceInfo[];
}

/**
 * The byte-stable form of a Definition: canonical JSON with ops in dependency order and source
 * files in a table. The same Definition always gives the same string.
 */
export function serializeDefinition(definition: Definition): string {
  const sources: SourceInfo[] = [];
  const sourceIndex = new Map<string, number>();
  const indexOf = (source: SourceInfo): number => {
    const key = canonicalJson(source);
    let index = sourceIndex.get(key);
    if (index === undefined) {
      index = sources.length;
      sources.push(source);
      sourceIndex.set(key, index);
    }
    return index;
  };
  const ops: SerializedOp[] = [];
  for (const [digest, op] of definition.ops) {
    const metadata = definition.metadata.get(digest);
    const locations = definition.locations.get(digest);
    ops.push({
      digest,
      op,
      ...(metadata !== undefined && Object.keys(metadata).length > 0 ? { metadata } : {}),
      ...(locations !== undefined && locations.length > 0
        ? { locations: locations.map((l) => ({ source: indexOf(l.source), ranges: l.ranges })) }
        : {}),
    });
  }
  const serialized: SerializedDefinition = { version: 1, head: definition.head, ops, sources };
  return canonicalJson(serialized);
}

/**
 * Reads a serialized Definition back, checking that every digest matches its op and that every
 * input refers to an op that comes before it.
 */
export function parseDefinition(text: string): Definition {
  const parsed = JSON.parse(text) as SerializedDefinition;
  if (parsed.version !== 1) throw new TypeError(`Cannot read definition: unsupported version ${String(parsed.version)}`);
  const ops = new Map<Digest, Op>();
  const metadata = new Map<Digest, OpMetadata>();
  const locations = new Map<Digest, readonly SourceLocation[]>();
  for (const entry of parsed.ops) {
    const actual = opDigest(entry.op);
    if (!isDigest(entry.digest) || actual !== entry.digest) {
      throw new TypeError(`Cannot read definition: op digest "${entry.digest}" does not match its content (${actual})`);
    }
    for (const input of opInputs(entry.op)) {
      if (!ops.has(input.digest)) throw new TypeError(`Cannot read definition: op "${entry.digest}" uses "${input.digest}" before it is defined`);
    }
    ops.set(entry.digest, entry.op);
    if (entry.metadata !== undefined) metadata.set(entry.digest, entry.metadata);
    if (entry.locations !== undefined) {
      locations.set(
        entry.digest,
        entry.locations.map((l) => {
          const source = parsed.sources[l.source];
          if (source === undefined) throw new TypeError(`Cannot read definition: op "${entry.digest}" names missing source ${l.source}`);
          return { source, ranges: l.ranges };
        }),
      );
    }
  }
  if (parsed.head !== null && !ops.has(parsed.head.digest)) throw new TypeError(`Cannot read definition: head "${parsed.head.digest}" is not defined`);
  return { ops, metadata, locations, head: parsed.head };
}
