/**
 * The deterministic scheduler of the whole-node simulation: one virtual
 * time line, one queue of events, and one {@linkcode EventLoop} per simulated
 * process (plus the world's own loop for the network and the simulation's
 * steps).
 *
 * Every callback runs as a macrotask of its loop: the scheduler pops the
 * earliest event (by time, then by the order it was queued), runs it, then
 * waits until every microtask it started has settled (one `setImmediate`
 * turn, which runs after the microtask queue is empty) before the next event.
 * Nothing runs on real timers, so a seed replays exactly.
 *
 * A loop can be paused (SIGSTOP, a VM or GC pause: time runs on, the process
 * handles nothing, then drains what queued up), stalled (a long synchronous
 * task blocks it) and killed (a crash: its queued work vanishes).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { EventQueue, type Timed } from "./event_queue.ts";

/** A queued callback; returned by {@linkcode EventLoop.schedule} to cancel it. */
export interface ScheduledEvent extends Timed {
  /** The loop that runs it. */
  readonly loop: EventLoop;
  /** What to run. */
  readonly fn: () => void;
  /**
   * Where it comes from, for I/O (a peer's connection, a client, the disk):
   * a resumed loop handles what came from different sources in any order,
   * each source's in order. Timers and tasks have none.
   */
  readonly source?: string;
  /** Set by {@linkcode EventLoop.cancel}. */
  cancelled: boolean;
}

/** Resolves once every microtask queued so far (and those they queue) has run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The single time line and event queue of a simulation.
 *
 * @example Two loops sharing one time line
 * ```ts
 * import { Scheduler } from "./scheduler.ts";
 * const s = new Scheduler();
 * const a = s.createLoop("a");
 * const order: string[] = [];
 * a.schedule(10, () => order.push(`a@${s.now}`));
 * s.world.schedule(5, () => order.push(`world@${s.now}`));
 * await s.runUntil(100);
 * console.log(order.join(" ")); // world@5 a@10
 * ```
 */
export class Scheduler {
  #queue = new EventQueue<ScheduledEvent>();
  #now = 0;
  #events = 0;
  #onError: (error: unknown, loop: EventLoop) => void;
  #running: EventLoop | undefined;
  /** The world's loop: never paused; runs the network and the simulation's own steps. */
  readonly world: EventLoop;
  /** Randomness for the order a resumed loop reads its sources in (none: arrival order). */
  readonly random: (() => number) | undefined;

  /**
   * @param options.onError called when a callback throws (in a real runtime
   *   an uncaught exception in a timer or I/O callback kills the process);
   *   default: rethrow, which stops {@linkcode Scheduler.runNext}.
   * @param options.random randomness in [0, 1) for the order a resumed loop
   *   reads its sources in; default: the order their data came in.
   */
  constructor(
    options: {
      onError?: (error: unknown, loop: EventLoop) => void;
      random?: () => number;
    } = {},
  ) {
    this.#onError = options.onError ?? ((error) => {
      throw error;
    });
    this.random = options.random;
    this.world = new EventLoop(this, "world");
  }

  /** Virtual milliseconds since the start. */
  get now(): number {
    return this.#now;
  }

  /** The loop whose event runs right now (its microtasks included), if any. */
  get running(): EventLoop | undefined {
    return this.#running;
  }

  /** Events run so far. */
  get events(): number {
    return this.#events;
  }

  /** Events queued (cancelled ones and those of dead loops included until popped). */
  get queued(): number {
    return this.#queue.size;
  }

  /** A new loop for one process (one incarnation: a restarted process gets a new loop). */
  createLoop(name: string): EventLoop {
    return new EventLoop(this, name);
  }

  /** @internal Queue `event` (used by {@linkcode EventLoop}). */
  enqueue(event: ScheduledEvent): void {
    if (!(event.time >= this.#now)) {
      throw new RangeError(`cannot schedule at ${event.time}, before now (${this.#now})`);
    }
    this.#queue.push(event);
  }

  /** Time of the earliest queued event, or undefined. */
  peekTime(): number | undefined {
    return this.#queue.peek()?.time;
  }

  /**
   * Run the earliest runnable event, then let its microtasks settle. Returns
   * the loop it ran on, or undefined when the queue is empty. Events of
   * paused loops are set aside for their loop; those of dead loops and
   * cancelled ones are dropped.
   */
  async runNext(): Promise<EventLoop | undefined> {
    for (;;) {
      const event = this.#queue.pop();
      if (event === undefined) return undefined;
      if (event.cancelled) continue;
      const loop = event.loop;
      if (!loop.alive) continue;
      if (loop.paused) {
        loop.holdBack(event);
        continue;
      }
      this.#now = event.time;
      this.#events++;
      this.#running = loop;
      try {
        event.fn();
      } catch (error) {
        this.#onError(error, loop);
      }
      await settle();
      this.#running = undefined;
      return loop;
    }
  }

  /**
   * Run every event due at or before `time`, then set the clock to `time`.
   * Microtasks started outside the scheduler settle first.
   */
  async runUntil(time: number): Promise<void> {
    await settle();
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.time > time) break;
      await this.runNext();
    }
    if (time > this.#now) this.#now = time;
  }
}

/**
 * The event loop of one simulated process: its timers, macrotasks and I/O
 * completions all run here, one at a time, in time order.
 *
 * @example Pausing a process: time runs on, work waits, then drains
 * ```ts
 * import { Scheduler } from "./scheduler.ts";
 * const s = new Scheduler();
 * const loop = s.createLoop("n1");
 * const ran: number[] = [];
 * loop.schedule(10, () => ran.push(s.now));
 * loop.pause();
 * s.world.schedule(50, () => loop.resume());
 * await s.runUntil(100);
 * console.log(ran); // [ 50 ]
 * ```
 */
export class EventLoop {
  readonly #scheduler: Scheduler;
  #alive = true;
  #paused = false;
  #pauses = 0;
  #held: ScheduledEvent[] = [];
  /** A name for traces, e.g. "n1#3" (server n1, third incarnation). */
  readonly name: string;

  /** Use {@linkcode Scheduler.createLoop}. */
  constructor(scheduler: Scheduler, name: string) {
    this.#scheduler = scheduler;
    this.name = name;
  }

  /** The scheduler this loop runs on. */
  get scheduler(): Scheduler {
    return this.#scheduler;
  }

  /** False once killed: nothing of this loop runs again. */
  get alive(): boolean {
    return this.#alive;
  }

  /** Whether the loop is paused (or stalled). */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Run `fn` on this loop `delayMs` from now (0: after what is already due
   * now). `source` names where I/O comes from (see {@linkcode ScheduledEvent.source}).
   */
  schedule(delayMs: number, fn: () => void, source?: string): ScheduledEvent {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    return this.scheduleAt(this.#scheduler.now + delay, fn, source);
  }

  /** Run `fn` on this loop at virtual time `time` (not before now). */
  scheduleAt(time: number, fn: () => void, source?: string): ScheduledEvent {
    const event: ScheduledEvent = {
      time: Math.max(time, this.#scheduler.now),
      seq: 0,
      loop: this,
      fn,
      cancelled: false,
      source,
    };
    if (this.#alive) this.#scheduler.enqueue(event);
    return event;
  }

  /** Cancel a scheduled event (running or unknown ones are ignored). */
  cancel(event: ScheduledEvent): void {
    event.cancelled = true;
  }

  /** Times this loop was paused (stalls included). */
  get pauses(): number {
    return this.#pauses;
  }

  /** Stop handling anything; events due meanwhile wait for {@linkcode EventLoop.resume}. */
  pause(): void {
    if (!this.#paused) this.#pauses++;
    this.#paused = true;
  }

  /**
   * Handle again: everything that came due while paused runs now. As a
   * real event loop does: expired timers and tasks first, in the order they
   * came due; then I/O, each source's in order, the sources interleaved at
   * random (a loop reads its ready sockets in no particular order, not in
   * the order their data arrived).
   */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const held = this.#held.filter((e) => !e.cancelled);
    this.#held = [];
    const now = this.#scheduler.now;
    const random = this.#scheduler.random;
    const bySource = new Map<string, ScheduledEvent[]>();
    for (const event of held) {
      if (event.source === undefined || random === undefined) {
        this.scheduleAt(now, event.fn, event.source);
        continue;
      }
      let queue = bySource.get(event.source);
      if (queue === undefined) bySource.set(event.source, queue = []);
      queue.push(event);
    }
    const queues = [...bySource.values()];
    while (random !== undefined && queues.length > 0) {
      const k = Math.floor(random() * queues.length);
      const event = queues[k].shift()!;
      this.scheduleAt(now, event.fn, event.source);
      if (queues[k].length === 0) queues.splice(k, 1);
    }
  }

  /**
   * Block the loop for `ms` with a long synchronous task that runs after what
   * is already queued now: nothing else runs on it meanwhile, then it drains.
   */
  stall(ms: number): void {
    this.schedule(0, () => {
      this.pause();
      this.#scheduler.world.schedule(ms, () => this.resume());
    });
  }

  /** The process died: drop everything queued or held; nothing of it runs again. */
  kill(): void {
    this.#alive = false;
    this.#paused = false;
    this.#held = [];
  }

  /** @internal Keep an event that came due while paused (used by {@linkcode Scheduler}). */
  holdBack(event: ScheduledEvent): void {
    this.#held.push(event);
  }
}
