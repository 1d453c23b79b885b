/**
 * ReadIndex bookkeeping on the leader: read requests wait for a heartbeat
 * round, started after they arrived, to be acknowledged by a quorum; then
 * they are released at the commit index recorded when they arrived.
 *
 * @module
 */

import type { ReadState } from "./types.ts";

interface PendingRead {
  id: number;
  index: number;
  /** First heartbeat round whose acknowledgement confirms this read. */
  round: number;
}

/**
 * Pending ReadIndex requests, in arrival order.
 *
 * @example
 * ```ts
 * import { ReadOnlyQueue } from "./read_only.ts";
 * const q = new ReadOnlyQueue();
 * q.add(1, 10, 5);
 * const released = q.confirm(5);
 * console.log(released); // [{ id: 1, index: 10 }]
 * ```
 */
export class ReadOnlyQueue {
  #pending: PendingRead[] = [];

  /** Number of reads waiting. */
  get size(): number {
    return this.#pending.length;
  }

  /** Queue read `id` at commit index `index`, confirmed by heartbeat round `round`. */
  add(id: number, index: number, round: number): void {
    this.#pending.push({ id, index, round });
  }

  /** Release every read confirmed by a quorum acknowledgement of `round`. */
  confirm(round: number): ReadState[] {
    const released: ReadState[] = [];
    while (this.#pending.length > 0 && this.#pending[0].round <= round) {
      const r = this.#pending.shift()!;
      released.push({ id: r.id, index: r.index });
    }
    return released;
  }

  /** Drop every pending read (leadership lost); returns their ids. */
  clear(): number[] {
    const ids = this.#pending.map((r) => r.id);
    this.#pending = [];
    return ids;
  }

  /** Highest round any pending read waits for, or 0. */
  lastRound(): number {
    return this.#pending.length === 0 ? 0 : this.#pending[this.#pending.length - 1].round;
  }
}
