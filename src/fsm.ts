/**
 * The finite state machine interface: what a user implements to hold the
 * replicated state (a KV map, a lock table, ...).
 *
 * @module
 */

import type { SnapshotSink } from "./storage/types.ts";

/**
 * A committed entry as the FSM sees it.
 */
export interface FSMEntry {
  /** Log index of the entry. */
  index: number;
  /** Term in which it was created. */
  term: number;
  /** Bytes given to `apply()`. */
  data: Uint8Array;
}

/**
 * A point-in-time copy of the FSM state, written out while the FSM goes on
 * applying entries. `persist` writes to the sink (as a stream); `release`
 * frees what it held.
 *
 * @example
 * ```ts
 * import type { FSMSnapshot } from "./fsm.ts";
 * const snap: FSMSnapshot = {
 *   async persist(sink) { await sink.write(new TextEncoder().encode("state")); },
 *   release() {},
 * };
 * ```
 */
export interface FSMSnapshot {
  /** Write the state to `sink`. Do not close or cancel the sink: the caller does. */
  persist(sink: Pick<SnapshotSink, "write">): Promise<void>;
  /** Free resources; called after persist, whether it succeeded or not. */
  release(): void;
}

/**
 * The replicated state machine. Entries are applied one at a time in log
 * order on every server. `apply` must be deterministic.
 *
 * @typeParam R What `apply` returns; handed back to the `apply()` caller on the leader.
 *
 * @example A counter
 * ```ts
 * import type { FSM, FSMEntry } from "./fsm.ts";
 * class Counter implements FSM<number> {
 *   value = 0;
 *   apply(e: FSMEntry) { return this.value += e.data[0] ?? 0; }
 *   snapshot() {
 *     const v = this.value;
 *     return {
 *       async persist(sink: { write(c: Uint8Array): Promise<void> }) {
 *         await sink.write(new TextEncoder().encode(String(v)));
 *       },
 *       release() {},
 *     };
 *   }
 *   async restore(data: AsyncIterable<Uint8Array>) {
 *     let text = "";
 *     for await (const c of data) text += new TextDecoder().decode(c);
 *     this.value = Number(text);
 *   }
 * }
 * ```
 */
export interface FSM<R = unknown> {
  /** Apply one committed entry; the result reaches the `apply()` caller. */
  apply(entry: FSMEntry): R;
  /**
   * Optional: apply several entries at once (faster for some state machines).
   * Must return one result per entry, in order.
   */
  applyBatch?(entries: FSMEntry[]): R[];
  /**
   * Capture the state for a snapshot. Called between applies; the returned
   * snapshot must not change as later entries are applied.
   */
  snapshot(): FSMSnapshot | Promise<FSMSnapshot>;
  /** Replace the whole state with the snapshot `data`. */
  restore(data: AsyncIterable<Uint8Array>): Promise<void>;
}
