/**
 * A manual {@linkcode Clock} for driver tests: time moves only in
 * `advance()`, tasks run only in `settle()`. Real `Raft` nodes over memory
 * stores and the memory network then do nothing on their own.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../../src/platform/clock.ts";

interface FakeTimer {
  id: number;
  at: number;
  seq: number;
  callback: () => void;
}

/** A real macrotask: every microtask queued before it has run. */
function realTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Time that moves only when told to. */
export class FakeClock implements Clock {
  #now = 0;
  #timers: FakeTimer[] = [];
  #tasks: Array<() => void> = [];
  #seq = 0;
  #closed = false;

  /** Wall clock origin (ms since the epoch at fake time 0). */
  readonly wallOrigin = Date.UTC(2025, 0, 1);

  now(): number {
    return this.#now;
  }

  wallClock(): number {
    return this.wallOrigin + this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { id: ++this.#seq, at: this.#now + Math.max(0, ms), seq: this.#seq, callback };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  queueTask(callback: () => void): void {
    if (!this.#closed) this.#tasks.push(callback);
  }

  close(): void {
    this.#closed = true;
    this.#tasks = [];
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Run queued tasks and everything they cause, without moving time, until quiet. */
  async settle(): Promise<void> {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      await realTurn();
      if (this.#tasks.length === 0) {
        await realTurn();
        if (this.#tasks.length === 0) return;
      }
      const tasks = this.#tasks;
      this.#tasks = [];
      for (const task of tasks) task();
    }
    throw new Error("FakeClock.settle: tasks keep coming (a busy loop?)");
  }

  /** Move time forward by `ms`, firing due timers in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await this.settle();
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) {
          next = t;
        }
      }
      if (!next) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await this.settle();
    }
    this.#now = end;
    await this.settle();
  }

  /** Advance in `step` ms steps until `condition` holds; throws after `limitMs` of fake time. */
  async advanceUntil(condition: () => boolean, limitMs = 60_000, step = 10): Promise<void> {
    const end = this.#now + limitMs;
    while (!condition()) {
      if (this.#now >= end) throw new Error(`condition not met within ${limitMs} ms of fake time`);
      await this.advance(step);
    }
  }

  /** Settle until `promise` settles, advancing time by `step` ms when nothing else happens. */
  async run<T>(promise: Promise<T>, limitMs = 60_000, step = 10): Promise<T> {
    let done = false;
    const watched = promise.finally(() => done = true);
    watched.catch(() => {});
    await this.advanceUntil(() => done, limitMs, step);
    return await watched;
  }
}
