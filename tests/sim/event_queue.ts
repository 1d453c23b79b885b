/**
 * A binary min-heap of timed events, ordered by time and then by insertion
 * order, so simultaneous events run in a deterministic order.
 *
 * @module
 */

/** Anything scheduled at a simulated time. */
export interface Timed {
  /** Simulated time the event fires at. */
  time: number;
  /** Tie-breaker, assigned by the queue. */
  seq: number;
}

/**
 * Priority queue of events by (`time`, `seq`).
 *
 * @example
 * ```ts
 * import { EventQueue } from "./event_queue.ts";
 * const q = new EventQueue<{ time: number; seq: number; name: string }>();
 * q.push({ time: 5, seq: 0, name: "late" });
 * q.push({ time: 1, seq: 0, name: "early" });
 * console.log(q.pop()?.name); // "early"
 * ```
 */
export class EventQueue<T extends Timed> {
  #heap: T[] = [];
  #seq = 0;

  /** Number of queued events. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedule `event` (its `seq` is overwritten). */
  push(event: T): void {
    event.seq = this.#seq++;
    const h = this.#heap;
    h.push(event);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i], h[parent])) break;
      const tmp = h[i];
      h[i] = h[parent];
      h[parent] = tmp;
      i = parent;
    }
  }

  /** Remove and return the earliest event. */
  pop(): T | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n && less(h[l], h[m])) m = l;
        if (r < n && less(h[r], h[m])) m = r;
        if (m === i) break;
        const tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
      }
    }
    return top;
  }

  /** The earliest event without removing it. */
  peek(): T | undefined {
    return this.#heap[0];
  }
}

function less(a: Timed, b: Timed): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
