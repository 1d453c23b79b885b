/**
 * Time and scheduling for a node: the one place the driver, the core's
 * callers and the file stores get "now", timers and "run this soon" from.
 *
 * Production uses {@linkcode RealClock} (the runtime's timers and a
 * `MessageChannel` for macrotasks); the deterministic simulation passes a
 * virtual clock whose time advances only when its scheduler says so. Nothing
 * in `src/raft.ts`, `src/node`, `src/core` or `src/storage` calls
 * `Date.now()`, `performance.now()`, `setTimeout` or `setInterval` itself.
 *
 * It lives in the bottom layer because both the node and the stores below it
 * take a clock. {@linkcode RealClock} uses only web-standard timers and
 * `MessageChannel`, the same on every runtime.
 *
 * @module
 */

/** An opaque handle returned by {@linkcode Clock.setTimeout}. */
export type TimerHandle = unknown;

/**
 * Time and scheduling, injectable.
 *
 * @example Waiting on a clock
 * ```ts
 * import { type Clock, RealClock } from "./clock.ts";
 * const clock: Clock = new RealClock();
 * const start = clock.now();
 * await new Promise<void>((resolve) => clock.setTimeout(resolve, 5));
 * console.log(clock.now() - start >= 4);
 * clock.close();
 * ```
 */
export interface Clock {
  /**
   * Monotonic milliseconds since an arbitrary origin: never goes back, keeps
   * running while the process is stopped (SIGSTOP, a VM stall, a long GC).
   * Leases, deadlines and durations are measured on it.
   */
  now(): number;
  /** Milliseconds since the Unix epoch, for timestamps people read (never for durations). */
  wallClock(): number;
  /** Run `callback` once after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancel a timer from {@linkcode Clock.setTimeout}; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Run `callback` as a macrotask, soon: after the current task and its
   * microtasks, after I/O callbacks already queued, before any timer that is
   * not yet due. Callbacks run in the order they were queued.
   */
  queueTask(callback: () => void): void;
  /** Release what the clock holds (a `MessageChannel`); pending tasks are dropped. */
  close(): void;
}

/**
 * The runtime's clock: `performance.now()`, `Date.now()`, the global timers,
 * and a `MessageChannel` for macrotasks (a `setTimeout(0)` costs a
 * millisecond or more; a posted message costs microseconds). The channel is
 * created on first use and released by {@linkcode RealClock.close}, so an idle
 * closed clock keeps no process alive.
 *
 * @example
 * ```ts
 * import { RealClock } from "./clock.ts";
 * const clock = new RealClock();
 * const order: string[] = [];
 * await new Promise<void>((resolve) => {
 *   clock.queueTask(() => order.push("first"));
 *   clock.queueTask(() => {
 *     order.push("second");
 *     resolve();
 *   });
 * });
 * console.log(order.join(",")); // first,second
 * clock.close();
 * ```
 */
export class RealClock implements Clock {
  #channel: MessageChannel | undefined;
  #tasks: Array<() => void> = [];
  #posted = false;
  #closed = false;

  /** Monotonic milliseconds (`performance.now()`). */
  now(): number {
    return performance.now();
  }

  /** Milliseconds since the Unix epoch (`Date.now()`). */
  wallClock(): number {
    return Date.now();
  }

  /** The global `setTimeout`. */
  setTimeout(callback: () => void, ms: number): TimerHandle {
    return setTimeout(callback, ms);
  }

  /** The global `clearTimeout`. */
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  /** Queue `callback` as a macrotask on this clock's `MessageChannel`. */
  queueTask(callback: () => void): void {
    if (this.#closed) return;
    this.#tasks.push(callback);
    if (this.#posted) return;
    this.#posted = true;
    if (!this.#channel) {
      this.#channel = new MessageChannel();
      this.#channel.port2.onmessage = this.#run;
    }
    this.#channel.port1.postMessage(null);
  }

  /** Close the channel; tasks not yet run are dropped, later `queueTask` calls do nothing. */
  close(): void {
    this.#closed = true;
    this.#tasks = [];
    this.#channel?.port1.close();
    this.#channel?.port2.close();
    this.#channel = undefined;
  }

  #run = (): void => {
    this.#posted = false;
    // Tasks queued while these run wait for the next message, so a task that
    // requeues itself cannot starve I/O.
    const tasks = this.#tasks;
    this.#tasks = [];
    for (let i = 0; i < tasks.length; i++) {
      try {
        tasks[i]();
      } catch (error) {
        // Like a throwing timer callback: the error surfaces, the other tasks still run.
        this.#tasks = tasks.slice(i + 1).concat(this.#tasks);
        if (this.#tasks.length > 0 && !this.#closed) {
          this.#posted = true;
          this.#channel?.port1.postMessage(null);
        }
        throw error;
      }
    }
  };
}
