/**
 * The timers one node owns. Every timer of the driver is set here, on the
 * node's {@linkcode Clock}, so that `shutdown()` can cancel them all at once
 * and leave nothing behind that keeps a process alive.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../platform/clock.ts";

/**
 * Cancellable timers and sleeps on a clock; {@linkcode NodeTimers.cancelAll}
 * cancels every timer still pending and wakes every sleeper.
 *
 * @example
 * ```ts
 * import { RealClock } from "../platform/clock.ts";
 * import { NodeTimers } from "./timers.ts";
 * const clock = new RealClock();
 * const timers = new NodeTimers(clock);
 * let fired = false;
 * timers.after(10_000, () => fired = true);
 * await timers.sleep(1);
 * timers.cancelAll(); // the 10 s timer no longer holds the process
 * console.log(fired); // false
 * clock.close();
 * ```
 */
export class NodeTimers {
  /** The clock the timers run on. */
  readonly clock: Clock;
  #live = new Map<number, TimerHandle>();
  #sleepers = new Set<() => void>();
  #nextId = 1;
  #cancelled = false;

  /** Timers on `clock`. */
  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Run `callback` once after `ms`; returns a function that cancels it. */
  after(ms: number, callback: () => void): () => void {
    if (this.#cancelled) return () => {};
    const id = this.#nextId++;
    const handle = this.clock.setTimeout(() => {
      this.#live.delete(id);
      callback();
    }, ms);
    this.#live.set(id, handle);
    return () => {
      const h = this.#live.get(id);
      if (h === undefined) return;
      this.#live.delete(id);
      this.clock.clearTimeout(h);
    };
  }

  /**
   * Resolves after `ms`, or at once once the timers are cancelled: a caller
   * that slept re-checks whether the node still runs.
   */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#cancelled) {
        resolve();
        return;
      }
      let cancel = () => {};
      const wake = () => {
        this.#sleepers.delete(wake);
        cancel();
        resolve();
      };
      this.#sleepers.add(wake);
      cancel = this.after(ms, wake);
    });
  }

  /** Whether {@linkcode NodeTimers.cancelAll} was called. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Cancel every pending timer and wake every sleeper; later timers are not set. */
  cancelAll(): void {
    this.#cancelled = true;
    for (const handle of this.#live.values()) this.clock.clearTimeout(handle);
    this.#live.clear();
    for (const wake of [...this.#sleepers]) wake();
  }
}
