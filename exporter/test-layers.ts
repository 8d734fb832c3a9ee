import { Readable } from "node:stream";
import tar from "tar-stream";
import type { LayerSource } from "../worker/snapshotter/types.js";

/** One entry of a test layer, written exactly as given (parents are not implied). */
export type FixtureEntry =
  | { readonly kind: "dir"; readonly path: string; readonly mode?: number }
  | { readonly kind: "file"; readonly path: string; readonly content: string | Buffer; readonly mode?: number }
  | { readonly kind: "symlink"; readonly path: string; readonly target: string }
  | { readonly kind: "hardlink"; readonly path: string; readonly target: string }
  /** An OCI whiteout: `.wh.<name>` beside the path it deletes. */
  | { readonly kind: "whiteout"; readonly path: string };

/**
 * The bytes of an uncompressed layer tar made with tar-stream: root-owned, mtime 1 000 000 000 s,
 * so equal entries give equal bytes. For exporter tests, which must not depend on the differ.
 */
export async function fixtureTar(entries: readonly FixtureEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const base = { uid: 0, gid: 0, mtime: new Date(1_000_000_000_000) };
  for (const entry of entries) {
    switch (entry.kind) {
      case "dir":
        pack.entry({ ...base, name: entry.path.endsWith("/") ? entry.path : `${entry.path}/`, type: "directory", mode: entry.mode ?? 0o755 });
        break;
      case "file":
        pack.entry({ ...base, name: entry.path, type: "file", mode: entry.mode ?? 0o644 }, entry.content);
        break;
      case "symlink":
        pack.entry({ ...base, name: entry.path, type: "symlink", mode: 0o777, linkname: entry.target });
        break;
      case "hardlink":
        pack.entry({ ...base, name: entry.path, type: "link", mode: 0o644, linkname: entry.target });
        break;
      case "whiteout": {
        const slash = entry.path.lastIndexOf("/");
        const name = `${entry.path.slice(0, slash + 1)}.wh.${entry.path.slice(slash + 1)}`;
        pack.entry({ ...base, name, type: "file", mode: 0o644 }, "");
        break;
      }
    }
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A LayerSource without a blob whose `openTar()` streams `bytes` afresh each time (and counts the calls). */
export function fixtureLayer(snapshot: string, bytes: Buffer): LayerSource & { readonly opened: () => number } {
  let opened = 0;
  return {
    snapshot,
    blob: undefined,
    openTar: () => {
      opened++;
      return Readable.from([bytes], { objectMode: false });
    },
    opened: () => opened,
  };
}
