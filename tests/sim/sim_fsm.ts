/**
 * The simulated state machine and disk of one node.
 *
 * The FSM is a tiny register file: each Normal entry writes a client write id
 * into one of a few keys. Each value remembers the log index that wrote it, so
 * a read can be checked against the history of acknowledged writes.
 *
 * @module
 */

import { type Entry, EntryType, type HardState, type SnapshotMeta } from "../../src/core/types.ts";

/** Number of keys of the register file. */
export const KEYS = 4;

/** One register: the write that last set it and that write's log index. */
export interface FsmValue {
  /** Client write id. */
  writeId: number;
  /** Log index of the entry that wrote it. */
  index: number;
}

/** A copy of the FSM at an applied index. */
export interface FsmSnapshot {
  /** Applied index the copy was taken at. */
  index: number;
  /** Registers, one per key. */
  values: ReadonlyArray<FsmValue | undefined>;
}

/**
 * Encode a client write: 8 bytes, write id then key.
 *
 * @example
 * ```ts
 * import { decodeWrite, encodeWrite } from "./sim_fsm.ts";
 * console.log(decodeWrite(encodeWrite(42, 3))); // { writeId: 42, key: 3 }
 * ```
 */
export function encodeWrite(writeId: number, key: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, writeId);
  view.setUint32(4, key);
  return out;
}

/**
 * Decode what {@linkcode encodeWrite} produced.
 *
 * @example
 * ```ts
 * import { decodeWrite, encodeWrite } from "./sim_fsm.ts";
 * console.log(decodeWrite(encodeWrite(1, 2)).key); // 2
 * ```
 */
export function decodeWrite(data: Uint8Array): { writeId: number; key: number } {
  if (data.byteLength !== 8) {
    throw new TypeError(`a simulated write is 8 bytes, got ${data.byteLength}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, 8);
  return { writeId: view.getUint32(0), key: view.getUint32(4) };
}

/**
 * The register-file FSM.
 *
 * @example
 * ```ts
 * import { encodeWrite, SimFsm } from "./sim_fsm.ts";
 * import { EntryType } from "../../src/core/types.ts";
 * const fsm = new SimFsm();
 * fsm.apply({ index: 2, term: 1, type: EntryType.Normal, data: encodeWrite(7, 1) });
 * console.log(fsm.read(1)?.writeId); // 7
 * ```
 */
export class SimFsm {
  /** Registers, one per key. */
  values: Array<FsmValue | undefined>;
  /** Last applied index. */
  applied: number;

  /** Creates an empty FSM, or one restored from `snapshot`. */
  constructor(snapshot?: FsmSnapshot) {
    this.values = snapshot ? [...snapshot.values] : new Array(KEYS).fill(undefined);
    this.applied = snapshot?.index ?? 0;
  }

  /** Apply a committed entry (Noop and Configuration entries only move the applied index). */
  apply(entry: Entry): void {
    if (entry.type === EntryType.Normal) {
      const { writeId, key } = decodeWrite(entry.data);
      this.values[key] = { writeId, index: entry.index };
    }
    this.applied = entry.index;
  }

  /** Current value of `key`. */
  read(key: number): FsmValue | undefined {
    return this.values[key];
  }

  /** Copy of the state at the applied index. */
  snapshot(): FsmSnapshot {
    return { index: this.applied, values: [...this.values] };
  }
}

/**
 * A node's simulated disk: hard state, newest snapshot and the log. Writes
 * are applied only when the simulation says they completed (or partially, for
 * a torn write at a crash).
 *
 * @example
 * ```ts
 * import { SimDisk } from "./sim_fsm.ts";
 * import { EntryType } from "../../src/core/types.ts";
 * const disk = new SimDisk();
 * disk.appendAt([{ index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array() }]);
 * console.log(disk.lastIndex()); // 1
 * ```
 */
export class SimDisk {
  /** Durable term, vote and commit hint. */
  hardState: HardState | undefined;
  /** Newest durable snapshot and its data. */
  snapshot: { meta: SnapshotMeta; data: FsmSnapshot } | undefined;
  /** Index of `log[0]` (the next index to write when the log is empty). */
  start = 1;
  /** Durable entries from `start` on. */
  log: Entry[] = [];

  /** Index of the last durable entry (`start - 1` when empty). */
  lastIndex(): number {
    return this.start + this.log.length - 1;
  }

  /** Install a snapshot: it replaces the whole log. */
  installSnapshot(meta: SnapshotMeta, data: FsmSnapshot): void {
    if (this.snapshot && this.snapshot.meta.index >= meta.index) {
      throw new Error(
        `disk: installing snapshot ${meta.index} over newer snapshot ${this.snapshot.meta.index}`,
      );
    }
    this.snapshot = { meta, data };
    this.log = [];
    this.start = meta.index + 1;
  }

  /** Save a locally taken snapshot (the log stays). */
  saveSnapshot(meta: SnapshotMeta, data: FsmSnapshot): void {
    if (this.snapshot && this.snapshot.meta.index >= meta.index) return;
    this.snapshot = { meta, data };
  }

  /** Truncate from `entries[0].index` and append `entries` (contiguous). */
  appendAt(entries: readonly Entry[], count = entries.length): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first < this.start) {
      throw new Error(`disk: append at ${first} below the log start ${this.start}`);
    }
    if (first > this.lastIndex() + 1) {
      throw new Error(`disk: append at ${first} leaves a gap after ${this.lastIndex()}`);
    }
    this.log.length = first - this.start;
    for (let i = 0; i < count; i++) this.log.push(entries[i]);
  }

  /** Drop entries up to `index` (covered by the snapshot). */
  compactTo(index: number): void {
    if (index < this.start) return;
    const drop = Math.min(index - this.start + 1, this.log.length);
    this.log = this.log.slice(drop);
    this.start = index + 1;
  }
}
