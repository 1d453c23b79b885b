/**
 * A {@linkcode Clock} on a simulated process's {@linkcode EventLoop}: its
 * time is the scheduler's, seen through the process's own clock (started
 * at boot, running a little fast or slow, its wall clock off by some
 * seconds); its timers, macrotasks and their callbacks run on that loop, so
 * pausing the loop delays them and killing it drops them.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../../src/platform/clock.ts";
import type { EventLoop, ScheduledEvent } from "./scheduler.ts";

/** How a process's clock differs from true (virtual) time. */
export interface ClockSkew {
  /**
   * Rate error: the clock runs `1 + drift` times as fast as true time
   * (0.01: 1% fast, -0.01: 1% slow). Default 0. Must be above -1.
   */
  drift?: number;
  /** Monotonic reading at this process's start (`performance.now()` starts near 0). Default 0. */
  bootMs?: number;
  /** Wall clock at true time 0 (Unix ms), skew included. Default 2024-01-01T00:00:00Z. */
  wallEpochMs?: number;
}

/**
 * The clock of one simulated process.
 *
 * @example A clock running 25% fast
 * ```ts
 * import { Scheduler } from "./scheduler.ts";
 * import { VirtualClock } from "./virtual_clock.ts";
 * const s = new Scheduler();
 * const clock = new VirtualClock(s.createLoop("n1"), { drift: 0.25 });
 * let firedAt = -1;
 * clock.setTimeout(() => firedAt = s.now, 125);
 * await s.runUntil(1000);
 * console.log(firedAt); // 100 (true time)
 * console.log(clock.now()); // 1250
 * ```
 */
export class VirtualClock implements Clock {
  readonly #loop: EventLoop;
  readonly #rate: number;
  readonly #startTrue: number;
  readonly #boot: number;
  readonly #wallEpoch: number;
  #tasks = new Set<ScheduledEvent>();
  #closed = false;

  /** A clock for the process running on `loop`, started now. */
  constructor(loop: EventLoop, skew: ClockSkew = {}) {
    const drift = skew.drift ?? 0;
    if (!(drift > -1) || !Number.isFinite(drift)) {
      throw new RangeError(`drift must be a finite number above -1, got ${drift}`);
    }
    this.#loop = loop;
    this.#rate = 1 + drift;
    this.#startTrue = loop.scheduler.now;
    this.#boot = skew.bootMs ?? 0;
    this.#wallEpoch = skew.wallEpochMs ?? Date.UTC(2024, 0, 1);
  }

  /** Monotonic milliseconds since this process's origin; runs on while the process is paused. */
  now(): number {
    return this.#boot + (this.#loop.scheduler.now - this.#startTrue) * this.#rate;
  }

  /** The process's wall clock (skewed, drifting). */
  wallClock(): number {
    return Math.floor(this.#wallEpoch + this.#loop.scheduler.now * this.#rate);
  }

  /** Run `callback` on the loop once this clock has advanced `ms`. */
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    return this.#loop.schedule(delay / this.#rate, callback);
  }

  /** Cancel a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void {
    if (handle !== null && typeof handle === "object" && "cancelled" in handle) {
      (handle as ScheduledEvent).cancelled = true;
    }
  }

  /** Run `callback` as a macrotask of the loop, after what is already due now. */
  queueTask(callback: () => void): void {
    if (this.#closed) return;
    const event = this.#loop.schedule(0, () => {
      this.#tasks.delete(event);
      callback();
    });
    this.#tasks.add(event);
  }

  /** Drop queued tasks; later `queueTask` calls do nothing (timers still fire, as with `RealClock`). */
  close(): void {
    this.#closed = true;
    for (const event of this.#tasks) event.cancelled = true;
    this.#tasks.clear();
  }
}
