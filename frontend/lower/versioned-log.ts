/**
 * Persistent (immutable) collections for stage state whose "change" costs O(1) when, as in
 * lowering, each version is extended at most once: every version is a length over a shared
 * append-only log. Extending the newest version appends in place; extending an older one (two
 * stages built on one base stage) first copies its prefix into a log of its own. Older versions
 * never see later writes, because they only read entries below their own length.
 */

interface TableLog<V> {
  readonly keys: string[];
  readonly values: V[];
  /** Log positions written for each key, ascending. */
  readonly writes: Map<string, number[]>;
}

/**
 * An ordered string-keyed table (like a Map: a key keeps the position of its first write, its
 * value is the last write), immutable: `set` returns a new table.
 */
export class VersionedTable<V> {
  readonly #log: TableLog<V>;
  readonly #length: number;
  #entries: Map<string, V> | undefined;

  private constructor(log: TableLog<V>, length: number) {
    this.#log = log;
    this.#length = length;
  }

  /** A table of `entries`, in order (a later entry for a key replaces the value in place). */
  static of<V>(entries: Iterable<readonly [string, V]> = []): VersionedTable<V> {
    let table = new VersionedTable<V>({ keys: [], values: [], writes: new Map() }, 0);
    for (const [key, value] of entries) table = table.set(key, value);
    return table;
  }

  /** This table with `key` set to `value`. */
  set(key: string, value: V): VersionedTable<V> {
    let log = this.#log;
    if (log.keys.length !== this.#length) log = this.#forked();
    const position = log.keys.length;
    log.keys.push(key);
    log.values.push(value);
    const writes = log.writes.get(key);
    if (writes === undefined) log.writes.set(key, [position]);
    else writes.push(position);
    return new VersionedTable(log, position + 1);
  }

  get(key: string): V | undefined {
    const writes = this.#log.writes.get(key);
    if (writes === undefined) return undefined;
    for (let i = writes.length - 1; i >= 0; i--) {
      const position = writes[i] as number;
      if (position < this.#length) return this.#log.values[position];
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** The keys in order of first write. */
  keys(): IterableIterator<string> {
    return this.entries().keys();
  }

  /** The entries in order of first write, as a Map (built once per version; do not change it). */
  entries(): ReadonlyMap<string, V> {
    if (this.#entries === undefined) {
      const map = new Map<string, V>();
      for (let i = 0; i < this.#length; i++) map.set(this.#log.keys[i] as string, this.#log.values[i] as V);
      this.#entries = map;
    }
    return this.#entries;
  }

  #forked(): TableLog<V> {
    const log: TableLog<V> = { keys: this.#log.keys.slice(0, this.#length), values: this.#log.values.slice(0, this.#length), writes: new Map() };
    log.keys.forEach((key, position) => {
      const writes = log.writes.get(key);
      if (writes === undefined) log.writes.set(key, [position]);
      else writes.push(position);
    });
    return log;
  }
}

/** An immutable list: `append` returns a new list. */
export class VersionedList<T> {
  readonly #log: T[];
  readonly #length: number;
  #array: readonly T[] | undefined;

  private constructor(log: T[], length: number) {
    this.#log = log;
    this.#length = length;
  }

  static of<T>(items: Iterable<T> = []): VersionedList<T> {
    const log = [...items];
    return new VersionedList(log, log.length);
  }

  get length(): number {
    return this.#length;
  }

  append(item: T): VersionedList<T> {
    const log = this.#log.length === this.#length ? this.#log : this.#log.slice(0, this.#length);
    log.push(item);
    return new VersionedList(log, this.#length + 1);
  }

  /** The items as an array (built once per version; do not change it). */
  toArray(): readonly T[] {
    this.#array ??= this.#log.slice(0, this.#length);
    return this.#array;
  }
}
