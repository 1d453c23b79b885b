/**
 * The storage interfaces a user can implement: the log, the small durable
 * hard state, and snapshots. File and memory implementations live beside this.
 *
 * @module
 */

import type { Entry, HardState, SnapshotMeta } from "../core/types.ts";

/**
 * The replicated log on durable storage.
 *
 * Indexes are contiguous from `firstIndex()` to `lastIndex()`; both are 0
 * when the log is empty. `storeLogs` must make the whole batch durable before
 * it resolves (one fsync per batch is the point: group commit).
 *
 * @example A tiny in-memory LogStore
 * ```ts
 * import type { LogStore } from "./types.ts";
 * import type { Entry } from "../core/types.ts";
 * class ArrayLogStore implements LogStore {
 *   #entries: Entry[] = [];
 *   firstIndex() { return Promise.resolve(this.#entries[0]?.index ?? 0); }
 *   lastIndex() { return Promise.resolve(this.#entries.at(-1)?.index ?? 0); }
 *   getLog(i: number) { return Promise.resolve(this.#entries.find((e) => e.index === i)); }
 *   getLogs(lo: number, hi: number) {
 *     return Promise.resolve(this.#entries.filter((e) => e.index >= lo && e.index <= hi));
 *   }
 *   storeLogs(batch: Entry[]) { this.#entries.push(...batch); return Promise.resolve(); }
 *   deleteRange(lo: number, hi: number) {
 *     this.#entries = this.#entries.filter((e) => e.index < lo || e.index > hi);
 *     return Promise.resolve();
 *   }
 *   close() { return Promise.resolve(); }
 * }
 * ```
 */
export interface LogStore {
  /** Index of the first stored entry, 0 when empty. */
  firstIndex(): Promise<number>;
  /** Index of the last stored entry, 0 when empty. */
  lastIndex(): Promise<number>;
  /** The entry at `index`, or undefined when it is not stored. */
  getLog(index: number): Promise<Entry | undefined>;
  /**
   * Entries `from..to` inclusive that are stored, in order. With `maxBytes`,
   * only the leading ones whose data add up to at most `maxBytes` (always at
   * least one): the node reads old entries in batches bounded this way. A
   * store that ignores `maxBytes` still works (the node trims what it gets).
   */
  getLogs(from: number, to: number, maxBytes?: number): Promise<Entry[]>;
  /**
   * Append a batch whose first index is `lastIndex() + 1` (or any index when
   * the store is empty). Resolves only once the batch is durable.
   */
  storeLogs(entries: Entry[]): Promise<void>;
  /**
   * Delete entries `min..max` inclusive. Used for a prefix (after a snapshot)
   * or a suffix (a follower's conflicting tail), never for a middle range.
   */
  deleteRange(min: number, max: number): Promise<void>;
  /** Release files and handles. */
  close(): Promise<void>;
}

/**
 * Durable home of the {@linkcode HardState} (term, vote, commit).
 * `setState` resolves only when the new state is durable.
 *
 * @example
 * ```ts
 * import type { StableStore } from "./types.ts";
 * import type { HardState } from "../core/types.ts";
 * class VariableStableStore implements StableStore {
 *   #state: HardState | undefined;
 *   getState() { return Promise.resolve(this.#state); }
 *   setState(s: HardState) { this.#state = { ...s }; return Promise.resolve(); }
 *   close() { return Promise.resolve(); }
 * }
 * ```
 */
export interface StableStore {
  /** The last state stored, or undefined for a new node. */
  getState(): Promise<HardState | undefined>;
  /** Store `state` durably. */
  setState(state: HardState): Promise<void>;
  /** Release files and handles. */
  close(): Promise<void>;
}

/** A stored snapshot's description. */
export interface SnapshotInfo extends SnapshotMeta {
  /** Store-specific identifier, e.g. `3-100-1700000000000`. */
  id: string;
  /** Size of the state in bytes. */
  size: number;
}

/**
 * Where a snapshot's state is written. Call `close()` to commit it or
 * `cancel()` to discard it.
 *
 * @example
 * ```ts
 * import type { SnapshotSink } from "./types.ts";
 * async function writeAll(sink: SnapshotSink, chunks: Uint8Array[]) {
 *   try {
 *     for (const c of chunks) await sink.write(c);
 *     return await sink.close();
 *   } catch (e) {
 *     await sink.cancel();
 *     throw e;
 *   }
 * }
 * ```
 */
export interface SnapshotSink {
  /** Identifier the snapshot will have once closed. */
  readonly id: string;
  /** Append a chunk of state. */
  write(chunk: Uint8Array): Promise<void>;
  /** Make the snapshot durable and visible; returns its final description. */
  close(): Promise<SnapshotInfo>;
  /** Discard what was written. */
  cancel(): Promise<void>;
}

/** An opened snapshot: its description and its state as a stream of chunks. */
export interface SnapshotSource {
  /** Description from the store. */
  info: SnapshotInfo;
  /** The state, read lazily; the store verifies its checksum as it streams. */
  data: AsyncIterable<Uint8Array>;
}

/**
 * Stores snapshots. Keeps the newest few; `list()` returns the newest first.
 *
 * @example Taking the newest snapshot
 * ```ts
 * import type { SnapshotStore } from "./types.ts";
 * async function newest(store: SnapshotStore) {
 *   const [info] = await store.list();
 *   return info ? await store.open(info.id) : undefined;
 * }
 * ```
 */
export interface SnapshotStore {
  /** Start writing a new snapshot with this metadata. */
  create(meta: SnapshotMeta): Promise<SnapshotSink>;
  /** Valid snapshots, newest (highest term, index) first. */
  list(): Promise<SnapshotInfo[]>;
  /** Open a snapshot by id for reading. */
  open(id: string): Promise<SnapshotSource>;
  /**
   * Delete a snapshot. Optional: the node uses it to take back a snapshot
   * written by an aborted `restore()`; without it such an abort stops the node.
   */
  remove?(id: string): Promise<void>;
}
