import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { open, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Descriptor, ImageIndex } from "../oci/index.js";

const REF_NAME = "org.opencontainers.image.ref.name";

/** A named image in the local store. `name` is the full normalised reference, e.g. `docker.io/library/busybox:latest`. */
export interface NamedImage {
  readonly name: string;
  readonly descriptor: Descriptor;
}

/**
 * The names of kiln's local images: the `index.json` of the content store's OCI layout, one
 * manifest descriptor per name with the name in `org.opencontainers.image.ref.name`. So
 * `skopeo inspect oci:ROOT/content:docker.io/library/busybox:latest` reads what kiln stored.
 * Updates take a lock file and replace index.json by rename, so concurrent kiln processes and
 * crashes never leave it half written.
 */
export class LocalImages {
  readonly #root: string;

  constructor(contentRoot: string) {
    this.#root = contentRoot;
  }

  async list(): Promise<readonly NamedImage[]> {
    const index = await this.#read();
    return index.manifests.flatMap((d) => {
      const name = d.annotations?.[REF_NAME];
      return name === undefined ? [] : [{ name, descriptor: d }];
    });
  }

  async get(name: string): Promise<Descriptor | undefined> {
    return (await this.list()).find((image) => image.name === name)?.descriptor;
  }

  /**
   * Points `name` at `descriptor` (a manifest or index already in the content store). A name that
   * already points at exactly that descriptor is left alone: no lock, no rewrite (a concurrent
   * `set` of another target is then ordered after this one, as it would be with the rewrite).
   */
  async set(name: string, descriptor: Descriptor): Promise<void> {
    const wanted: Descriptor = { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: name } };
    const current = (await this.#read()).manifests.find((d) => d.annotations?.[REF_NAME] === name);
    if (current !== undefined && canonicalJson(current) === canonicalJson(wanted)) return;
    await this.#update((manifests) => [
      ...manifests.filter((d) => d.annotations?.[REF_NAME] !== name),
      { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: name } },
    ]);
  }

  /** Removes a name; returns whether it existed. Blobs stay until pruned. */
  async remove(name: string): Promise<boolean> {
    let found = false;
    await this.#update((manifests) =>
      manifests.filter((d) => {
        const match = d.annotations?.[REF_NAME] === name;
        found ||= match;
        return !match;
      }),
    );
    return found;
  }

  async #read(): Promise<ImageIndex> {
    try {
      // Synchronous: one small file, read on every image lookup; inline it beats four thread-pool trips.
      return JSON.parse(readFileSync(join(this.#root, "index.json"), "utf8")) as ImageIndex;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { schemaVersion: 2, manifests: [] };
      throw error;
    }
  }

  async #update(change: (manifests: readonly Descriptor[]) => readonly Descriptor[]): Promise<void> {
    const lock = join(this.#root, "index.json.lock");
    const handle = await acquire(lock);
    try {
      const index = await this.#read();
      const next: ImageIndex = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: change(index.manifests) };
      const temp = join(this.#root, `index.json.${randomBytes(6).toString("hex")}`);
      await writeFile(temp, JSON.stringify(next));
      await rename(temp, join(this.#root, "index.json"));
    } finally {
      await handle.close();
      await rm(lock, { force: true });
    }
  }
}

/** JSON with object keys sorted, so equal descriptors compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** Takes an exclusive lock file; a lock older than 30 s is taken to be left by a dead process. */
async function acquire(path: string): Promise<import("node:fs/promises").FileHandle> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(path, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (attempt > 600) {
        await rm(path, { force: true });
        continue;
      }
      await sleep(50);
    }
  }
}
