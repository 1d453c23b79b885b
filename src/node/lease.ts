/**
 * The leader lease, judged on the monotonic clock at the moment a read is
 * served, never in ticks.
 *
 * The core answers a lease read only while its ticks say a quorum
 * acknowledged a recent heartbeat round, and names that round. But ticks
 * stop while the process is stopped (SIGSTOP, a VM stall, a long GC or
 * event-loop block): a leader that resumes after its successor was elected
 * would still count its lease as fresh and answer reads queued in its
 * sockets with stale values. So the driver stamps every heartbeat round with
 * `clock.now()` when it sends it, and a lease read is served only if
 * `now < sentAt(round) + leaseMs` at that moment (and this node still
 * leads); otherwise it becomes a ReadIndex, which a deposed leader cannot
 * complete. This is the rule of the Raft thesis §6.4 and of openraft's
 * leader lease: if a quorum acknowledged a heartbeat sent at `t`, no other
 * leader can exist before `t + election timeout`, less the clock drift.
 *
 * Why that holds here. A follower that acknowledges round `r` received it at
 * some instant `≥ t` (the send time on our clock) and reset its election
 * timer then. With check-quorum it ignores vote and pre-vote requests for a
 * higher term until that timer reaches `electionTicks` (and a restarted one
 * for `electionTicks` after starting), and it campaigns no earlier. Its ticks
 * are timers re-armed on its own clock that never fire early nor catch up in
 * a burst, so `electionTicks` ticks take at least `(electionTicks - 1) ×
 * tickMs` of its time. Any quorum that elects a new leader includes one such
 * follower, so no new leader exists before `t + (electionTicks - 1) × tickMs
 * × (1 - ρ)` in real time, where `ρ` bounds how much faster one clock runs
 * than another. The lease is `leaseMs = L × tickMs` with `L ≤ min(E - 2,
 * 0.9 × E)` for `E = electionTicks` (see `timing.ts`), and our clock may
 * run fast by `ρ` too, so the lease ends before any successor can exist
 * while `ρ < (E - 1 - L) / (E - 1 + L)`: 8% with the default settings (E =
 * 20, L = 16), never below 2.5% whatever the settings. Real clocks differ by
 * well under 0.1%. A pause of the leader only makes `now()` larger, so it
 * can only end the lease sooner. A leadership transfer (TimeoutNow) lets the
 * target win at once; the core stops offering lease reads once it sends one.
 *
 * @module
 */

import type { Clock } from "../platform/clock.ts";

/** How many recent rounds keep their send time (older ones are long expired). */
const RING = 1024;

/**
 * Send times of heartbeat rounds, and whether a lease resting on one holds.
 *
 * @example
 * ```ts
 * import { RealClock } from "../platform/clock.ts";
 * import { LeaseClock } from "./lease.ts";
 * const clock = new RealClock();
 * const lease = new LeaseClock(clock, 800);
 * lease.sent(7);
 * console.log(lease.holds(7), lease.holds(8)); // true false
 * ```
 */
export class LeaseClock {
  #clock: Clock;
  #leaseMs: number;
  #rounds = new Float64Array(RING).fill(-1);
  #sentAt = new Float64Array(RING);

  /** Leases of `leaseMs` on `clock`. */
  constructor(clock: Clock, leaseMs: number) {
    this.#clock = clock;
    this.#leaseMs = leaseMs;
  }

  /** The lease length in ms (changes with `reloadConfig`). */
  set leaseMs(ms: number) {
    this.#leaseMs = ms;
  }

  /** A heartbeat of `round` is being sent now (the first send of a round counts). */
  sent(round: number): void {
    const slot = round % RING;
    if (this.#rounds[slot] === round) return;
    this.#rounds[slot] = round;
    this.#sentAt[slot] = this.#clock.now();
  }

  /** Whether a lease resting on a quorum's acknowledgement of `round` holds now. */
  holds(round: number): boolean {
    const slot = round % RING;
    if (this.#rounds[slot] !== round) return false;
    return this.#clock.now() < this.#sentAt[slot] + this.#leaseMs;
  }

  /** Leadership ended: no round sent so far backs a lease any more. */
  forget(): void {
    this.#rounds.fill(-1);
  }
}
