/**
 * The leader's view of each follower: how much of the log it has, and how
 * the leader is currently replicating to it (probe, replicate, snapshot).
 *
 * @module
 */

import type { ServerId } from "./types.ts";

/**
 * How the leader sends to a follower.
 *
 * - `probe`: one append at a time until the follower's match index is found.
 * - `replicate`: appends are pipelined up to the in-flight limit.
 * - `snapshot`: a snapshot is on its way; nothing else is sent.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * A bounded window of in-flight appends, each remembered by its last index.
 *
 * @example
 * ```ts
 * import { Inflights } from "./progress.ts";
 * const w = new Inflights(2);
 * w.add(5); w.add(9);
 * console.log(w.full()); // true
 * w.freeLE(5);
 * console.log(w.count()); // 1
 * ```
 */
export class Inflights {
  #buffer: number[];
  #start = 0;
  #count = 0;

  /** Creates a window of `capacity` appends. */
  constructor(readonly capacity: number) {
    this.#buffer = new Array(capacity).fill(0);
  }

  /** Record an append whose last entry is `lastIndex`. */
  add(lastIndex: number): void {
    if (this.#count === this.capacity) throw new RangeError("inflights window is full");
    this.#buffer[(this.#start + this.#count) % this.capacity] = lastIndex;
    this.#count++;
  }

  /** Forget appends acknowledged up to `index`. */
  freeLE(index: number): void {
    while (this.#count > 0 && this.#buffer[this.#start] <= index) {
      this.#start = (this.#start + 1) % this.capacity;
      this.#count--;
    }
  }

  /** Forget the oldest append (its answer is presumed lost). */
  freeFirstOne(): void {
    if (this.#count === 0) return;
    this.#start = (this.#start + 1) % this.capacity;
    this.#count--;
  }

  /** Whether no more appends may be sent. */
  full(): boolean {
    return this.#count === this.capacity;
  }

  /** Appends in flight. */
  count(): number {
    return this.#count;
  }

  /** Forget everything. */
  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}

/**
 * Replication progress of one follower, as tracked by the leader.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const p = new Progress("n2", 11, 64);
 * p.maybeUpdate(10);
 * p.becomeReplicate();
 * console.log(p.state, p.match, p.next); // replicate 10 11
 * ```
 */
export class Progress {
  /** Highest index known replicated on the follower. */
  match = 0;
  /** Next index to send. */
  next: number;
  /** Sending mode. */
  state: ProgressState = "probe";
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** In probe state: an append was sent and awaits its answer. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Leader tick at which the newest message the follower acknowledged was sent (lease reads). */
  leaseTick = -Infinity;
  /** Leader tick of the last message received from the follower. */
  lastHeardTick = -Infinity;
  /**
   * The read of older entries from storage (a `LogLoad` id) that will feed
   * this follower's next append, or 0. Its answer is used only if the
   * follower still wants those entries when it arrives.
   */
  loadId = 0;
  /** Pipelined appends. */
  readonly inflights: Inflights;

  /** Creates the progress of follower `id`, sending next from `next`. */
  constructor(readonly id: ServerId, next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  /** Whether the leader must wait before sending more. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /** Enter probe state: resend from just after the known match. */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  /** Enter replicate state: pipeline appends after the match. */
  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  /** Enter snapshot state while the snapshot at `index` is sent. */
  becomeSnapshot(index: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = index;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** The follower has everything up to `index`; returns whether that is news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; step `next` back using the
   * follower's hint. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      // A rejection of something already matched is a stale, reordered answer.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the last probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Account for an append just sent that ends at `lastIndex` carrying `count` entries. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }
}
