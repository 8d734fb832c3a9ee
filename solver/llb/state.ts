import { opDigest, type Definition } from "./definition.js";
import type { Digest } from "./digest.js";
import type {
  BindMount, CacheMount, CopyAction, ExecMeta, FileAction, Mount, NetworkMode, Op, OpInput, OpMetadata, SecurityMode,
} from "./ops.js";
import type { Platform } from "./platform.js";
import type { SourceLocation } from "./source-map.js";

/**
 * The immutable builder the frontend uses to make ops (after buildkit's llb.State). A Vertex knows
 * its op, its digest and the outputs it reads; building never mutates anything, and equal ops get
 * equal digests wherever they are built.
 */
export interface Vertex {
  readonly digest: Digest;
  readonly op: Op;
  readonly inputs: readonly Output[];
  readonly metadata: OpMetadata;
  readonly locations: readonly SourceLocation[];
}

/** One output of a vertex. */
export interface Output {
  readonly vertex: Vertex;
  readonly index: number;
}

/** A filesystem tree: an output, or null for scratch (empty). */
export type Tree = Output | null;

/** Name, description and source ranges for the vertex being built. */
export interface VertexOptions {
  readonly metadata?: OpMetadata;
  readonly locations?: readonly SourceLocation[];
}

/** Collects distinct input outputs in first-use order and hands out their indexes. */
class InputTable {
  readonly outputs: Output[] = [];
  readonly #index = new Map<string, number>();

  indexOf(tree: Tree): number | null {
    if (tree === null) return null;
    const key = `${tree.vertex.digest}#${tree.index}`;
    let index = this.#index.get(key);
    if (index === undefined) {
      index = this.outputs.length;
      this.outputs.push(tree);
      this.#index.set(key, index);
    }
    return index;
  }

  opInputs(): OpInput[] {
    return this.outputs.map((o) => ({ digest: o.vertex.digest, output: o.index }));
  }
}

function vertex(op: Op, inputs: readonly Output[], options: VertexOptions): Vertex {
  return { digest: opDigest(op), op, inputs, metadata: options.metadata ?? {}, locations: options.locations ?? [] };
}

/** A source op (image, local directory, URL…); its single output is the tree it brings in. */
export function source(
  identifier: string,
  attrs: Readonly<Record<string, string>> = {},
  platform?: Platform,
  options: VertexOptions = {},
): Output {
  const op: Op = platform === undefined ? { kind: "source", identifier, attrs } : { kind: "source", identifier, attrs, platform };
  return { vertex: vertex(op, [], options), index: 0 };
}

/** An exec mount as the builder takes it: trees instead of input indexes, `output` as a flag. */
export type MountSpec =
  | (Omit<BindMount, "input" | "output"> & { readonly input: Tree; readonly output: boolean })
  | (Omit<CacheMount, "input"> & { readonly input: Tree })
  | Exclude<Mount, BindMount | CacheMount>;

export interface ExecSpec {
  readonly meta: ExecMeta;
  readonly mounts: readonly MountSpec[];
  readonly network: NetworkMode;
  readonly security: SecurityMode;
  readonly platform?: Platform;
}

/**
 * An exec op. Returns one entry per mount spec, in order: the output that mount produces, or null
 * for mounts without an output. Outputs are numbered in mount order.
 */
export function exec(spec: ExecSpec, options: VertexOptions = {}): { readonly vertex: Vertex; readonly outputs: readonly (Output | null)[] } {
  const table = new InputTable();
  let nextOutput = 0;
  const outputIndexes: (number | null)[] = [];
  const mounts: Mount[] = spec.mounts.map((m) => {
    switch (m.type) {
      case "bind": {
        const output = m.output ? nextOutput++ : null;
        outputIndexes.push(output);
        return { ...m, input: table.indexOf(m.input), output };
      }
      case "cache":
        outputIndexes.push(null);
        return { ...m, input: table.indexOf(m.input) };
      default:
        outputIndexes.push(null);
        return m;
    }
  });
  const op: Op = {
    kind: "exec",
    inputs: table.opInputs(),
    meta: spec.meta,
    mounts,
    network: spec.network,
    security: spec.security,
    ...(spec.platform === undefined ? {} : { platform: spec.platform }),
  };
  const v = vertex(op, table.outputs, options);
  return { vertex: v, outputs: outputIndexes.map((index) => (index === null ? null : { vertex: v, index })) };
}

/** A file action as the builder takes it: copy sources are trees instead of input indexes. */
export type FileActionSpec = Exclude<FileAction, CopyAction> | (Omit<CopyAction, "source"> & { readonly source: Output });

/** A file op applying `actions` in order to `base`; its output is the changed tree. */
export function file(base: Tree, actions: readonly FileActionSpec[], platform?: Platform, options: VertexOptions = {}): Output {
  const table = new InputTable();
  const baseIndex = table.indexOf(base);
  const resolved: FileAction[] = actions.map((a) => (a.kind === "copy" ? { ...a, source: table.indexOf(a.source) ?? 0 } : a));
  const op: Op = {
    kind: "file",
    inputs: table.opInputs(),
    base: baseIndex,
    actions: resolved,
    ...(platform === undefined ? {} : { platform }),
  };
  return { vertex: vertex(op, table.outputs, options), index: 0 };
}

/** Overlays trees in order, later ones winning. */
export function merge(trees: readonly Output[], options: VertexOptions = {}): Output {
  const table = new InputTable();
  for (const t of trees) table.indexOf(t);
  return { vertex: vertex({ kind: "merge", inputs: table.opInputs() }, table.outputs, options), index: 0 };
}

/**
 * Walks the graph under `head` into a Definition: each op once, inputs before their users. When
 * the same op was built in several places, names keep the first one seen and source locations add up.
 */
export function marshal(head: Tree): Definition {
  const ops = new Map<Digest, Op>();
  const metadata = new Map<Digest, OpMetadata>();
  const locations = new Map<Digest, SourceLocation[]>();
  const visit = (v: Vertex): void => {
    const seen = ops.has(v.digest);
    if (!seen) for (const input of v.inputs) visit(input.vertex);
    mergeMetadata(metadata, v);
    if (v.locations.length > 0) {
      const list = locations.get(v.digest) ?? [];
      for (const l of v.locations) if (!list.includes(l)) list.push(l);
      locations.set(v.digest, list);
    }
    if (!seen) ops.set(v.digest, v.op);
  };
  if (head !== null) visit(head.vertex);
  return { ops, metadata, locations, head: head === null ? null : { digest: head.vertex.digest, output: head.index } };
}

function mergeMetadata(into: Map<Digest, OpMetadata>, v: Vertex): void {
  const existing = into.get(v.digest);
  if (existing === undefined) {
    into.set(v.digest, v.metadata);
    return;
  }
  into.set(v.digest, {
    ...v.metadata,
    ...existing,
    ...(existing.ignoreCache === true || v.metadata.ignoreCache === true ? { ignoreCache: true } : {}),
  });
}
