/**
 * What a node's log holds, as its stores show it: decorators of a
 * {@linkcode LogStore} and a {@linkcode SnapshotStore} that keep a shadow of
 * the term at each index the node wrote or read back, and how far snapshots
 * cover the log. The simulation's invariant checks read the real node's log
 * through it, without reaching into the driver.
 *
 * @module
 */

import type { Entry } from "../../src/core/types.ts";
import type {
  LogStore,
  SnapshotInfo,
  SnapshotSink,
  SnapshotSource,
  SnapshotStore,
} from "../../src/storage/types.ts";
import type { LogView } from "./checker.ts";

/**
 * A log store that remembers, for the checker, the term of every entry its
 * node stored or read back, and reports each append before passing it on.
 *
 * @example
 * ```ts
 * import { MemoryLogStore } from "../../src/storage/memory_log_store.ts";
 * import { ShadowLogStore } from "./log_shadow.ts";
 * const appended: number[] = [];
 * const log = new ShadowLogStore("n1", new MemoryLogStore(), (_prev, es) => appended.push(es.length));
 * await log.storeLogs([{ index: 1, term: 2, type: 0, data: new Uint8Array() }]);
 * console.log(log.termAt(1), appended); // 2 [ 1 ]
 * ```
 */
export class ShadowLogStore implements LogStore, LogView {
  /** Server id. */
  readonly id: string;
  readonly #inner: LogStore;
  readonly #onAppend: (prevTerm: number | undefined, entries: Entry[]) => void;
  /** Term by index (holes: unknown); indices below `#first` are gone. */
  #terms: Array<number | undefined> = [];
  #first = 1;
  #deletedTo = 0;
  #snapshotIndex = 0;
  #snapshotTerm = 0;

  /**
   * @param id The node's id.
   * @param inner The store to pass every call to.
   * @param onAppend Told of each append with the term of the entry before it (undefined: unknown).
   */
  constructor(
    id: string,
    inner: LogStore,
    onAppend: (prevTerm: number | undefined, entries: Entry[]) => void,
  ) {
    this.id = id;
    this.#inner = inner;
    this.#onAppend = onAppend;
  }

  /** Term of the entry at `index` as last written or read, if known. */
  termAt(index: number): number | undefined {
    const t = index >= this.#first ? this.#terms[index] : undefined;
    return t ?? (index === this.#snapshotIndex && index > 0 ? this.#snapshotTerm : undefined);
  }

  /** Entries up to here are gone from the log, covered by a snapshot. */
  get compactedTo(): number {
    return Math.max(this.#deletedTo, this.#snapshotIndex);
  }

  /** The node restored its state from the snapshot at (`index`, `term`). */
  noteSnapshot(index: number, term: number): void {
    if (index >= this.#snapshotIndex) {
      this.#snapshotIndex = index;
      this.#snapshotTerm = term;
    }
  }

  firstIndex(): Promise<number> {
    return this.#inner.firstIndex();
  }

  lastIndex(): Promise<number> {
    return this.#inner.lastIndex();
  }

  async getLog(index: number): Promise<Entry | undefined> {
    const e = await this.#inner.getLog(index);
    if (e) this.#record(e);
    return e;
  }

  async getLogs(from: number, to: number): Promise<Entry[]> {
    const entries = await this.#inner.getLogs(from, to);
    for (const e of entries) this.#record(e);
    return entries;
  }

  #record(e: Entry): void {
    if (this.#terms.length <= this.#first || e.index < this.#first) this.#first = e.index;
    this.#terms[e.index] = e.term;
  }

  storeLogs(entries: Entry[]): Promise<void> {
    if (entries.length > 0) {
      const first = entries[0].index;
      if (this.#terms.length > first) this.#terms.length = first;
      const prev = this.termAt(first - 1);
      for (const e of entries) this.#record(e);
      this.#onAppend(prev, entries);
    }
    return this.#inner.storeLogs(entries);
  }

  deleteRange(min: number, max: number): Promise<void> {
    const last = this.#terms.length - 1;
    if (min > this.#first && max >= last) {
      // A suffix: conflicting entries.
      if (this.#terms.length > min) this.#terms.length = min;
    } else {
      // A prefix, or everything: compaction behind a snapshot, or a snapshot
      // that replaces the log. (A conflict right at the start of the log
      // looks the same; taking it for compaction only skips some checks.)
      this.#deletedTo = Math.max(this.#deletedTo, max);
      if (max >= last) {
        this.#terms = [];
        this.#first = max + 1;
      } else {
        for (let i = this.#first; i <= max; i++) this.#terms[i] = undefined;
        this.#first = Math.max(this.#first, max + 1);
      }
    }
    return this.#inner.deleteRange(min, max);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/**
 * A snapshot store that tells a {@linkcode ShadowLogStore} whenever its node
 * opens a snapshot (to restore its state from it, at start or on install).
 *
 * @example
 * ```ts
 * import { MemoryLogStore } from "../../src/storage/memory_log_store.ts";
 * import { MemorySnapshotStore } from "../../src/storage/memory_snapshot_store.ts";
 * import { ShadowLogStore, ShadowSnapshotStore } from "./log_shadow.ts";
 * const log = new ShadowLogStore("n1", new MemoryLogStore(), () => {});
 * const snaps = new ShadowSnapshotStore(new MemorySnapshotStore(), log);
 * const sink = await snaps.create({ index: 5, term: 2, configuration: { servers: [] }, configurationIndex: 1 });
 * const info = await sink.close();
 * await snaps.open(info.id);
 * console.log(log.compactedTo); // 5
 * ```
 */
export class ShadowSnapshotStore implements SnapshotStore {
  readonly #inner: SnapshotStore;
  readonly #log: ShadowLogStore;
  /** Index of the newest snapshot this process closed (made durable) or opened; 0: none. */
  newest = 0;

  /** Pass every call to `inner`; report opened snapshots to `log`. */
  constructor(inner: SnapshotStore, log: ShadowLogStore) {
    this.#inner = inner;
    this.#log = log;
    if (inner.remove) this.remove = (id: string) => inner.remove!(id);
  }

  create(meta: Parameters<SnapshotStore["create"]>[0]): Promise<SnapshotSink> {
    // Watch the sink's close on a side branch, adding no step to the
    // driver's promise chains (a recorded seed keeps its interleaving).
    const created = this.#inner.create(meta);
    created.then((sink) => {
      const close = sink.close.bind(sink);
      sink.close = () => {
        const closed = close();
        closed.then((info) => {
          this.newest = Math.max(this.newest, info.index);
        }, () => {});
        return closed;
      };
    }, () => {});
    return created;
  }

  list(): Promise<SnapshotInfo[]> {
    return this.#inner.list();
  }

  async open(id: string): Promise<SnapshotSource> {
    const source = await this.#inner.open(id);
    this.#log.noteSnapshot(source.info.index, source.info.term);
    this.newest = Math.max(this.newest, source.info.index);
    return source;
  }

  /** Present when the inner store has it. */
  remove?: (id: string) => Promise<void>;
}
