/**
 * Operations in flight and their deadlines: proposals waiting to be applied,
 * reads waiting for a confirmation and then for the FSM to catch up,
 * leadership transfers, and callers waiting for a Ready to be durable. Each
 * ends exactly once: resolved, rejected, timed out or aborted.
 *
 * @module
 */

import {
  AbortError,
  LeadershipLostError,
  LeadershipTransferError,
  TimeoutError,
} from "../errors.ts";
import type { HistogramRecorder } from "../metrics.ts";
import type { ApplyResult, OperationOptions } from "./types.ts";
import type { Clock } from "../platform/clock.ts";
import { IndexQueue } from "./index_queue.ts";
import { deferred } from "../deferred.ts";

/** When an operation gives up: `at` on `clock.now()` (Infinity: never), after `ms` it was given. */
export interface Deadline {
  /** The instant, on the clock's `now()`. */
  at: number;
  /** The timeout the caller gave, for the error message (0 without one). */
  ms: number;
}

/** No timeout. */
export const NO_DEADLINE: Deadline = { at: Infinity, ms: 0 };

interface PendingApply {
  term: number;
  resolve: (r: ApplyResult<unknown>) => void;
  reject: (e: Error) => void;
  start: number;
  deadline: number;
  /** The operation and its timeout, for a TimeoutError. */
  op: string;
  timeoutMs: number;
  /** Noop and configuration entries resolve with their index only. */
  kind: "apply" | "index";
}

interface PendingRead {
  id: number;
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  deadline: number;
  op: string;
  timeoutMs: number;
  /** verifyLeader only needs the confirmation, not the apply. */
  waitApply: boolean;
  index: number;
  /** For a read answered from the lease: the heartbeat round the lease rests on. */
  leaseRound?: number;
}

/** How lease reads are judged when served, and turned into ReadIndex reads when the lease is gone. */
export interface ReadLease {
  /** Whether a lease resting on a quorum's acknowledgement of `round` holds now. */
  holds(round: number): boolean;
  /** Ask the core for read `id` again, as a ReadIndex; returns why it cannot, if it cannot. */
  reissue(id: number): Error | undefined;
}

interface TransferWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
  deadline: number;
  timeoutMs: number;
  /** `clock.now()` when this node was first seen not leading, if it was. */
  steppedDownAt?: number;
}

/** Where leadership stands, for {@linkcode PendingOperations.checkTransfers}. */
export interface LeadershipView {
  /** Whether this node leads. */
  leading: boolean;
  /** Whether its core dropped the transfer (the target did not take over in time). */
  transferAborted: boolean;
  /** Whether another node is known to lead. */
  otherLeader: boolean;
  /** How long (ms) a node that stepped down waits to hear of a successor. */
  successorWithin: number;
}

interface PersistWaiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * The deadline of an operation with `options` ({@linkcode NO_DEADLINE}
 * without a timeout). Throws a `RangeError` for a bad timeout.
 *
 * @example
 * ```ts
 * import { RealClock } from "../platform/clock.ts";
 * import { operationDeadline } from "./pending.ts";
 * const clock = new RealClock();
 * console.log(operationDeadline(clock, undefined, "apply").at); // Infinity
 * console.log(operationDeadline(clock, { timeout: 50 }, "apply").ms); // 50
 * ```
 */
export function operationDeadline(
  clock: Clock,
  options: OperationOptions | undefined,
  op: string,
): Deadline {
  const timeout = options?.timeout;
  if (timeout === undefined) return NO_DEADLINE;
  if (typeof timeout !== "number" || !(timeout > 0)) {
    throw new RangeError(`${op}: options.timeout must be a positive number of ms, got ${timeout}`);
  }
  return { at: clock.now() + timeout, ms: timeout };
}

/**
 * Bookkeeping of every operation waiting on the node.
 *
 * @example
 * ```ts
 * import { RealClock } from "../platform/clock.ts";
 * import { HistogramRecorder } from "../metrics.ts";
 * import { NO_DEADLINE, PendingOperations } from "./pending.ts";
 * const lease = { holds: () => false, reissue: () => undefined };
 * const pending = new PendingOperations(new RealClock(), new HistogramRecorder(), () => 0, lease);
 * const done = pending.addApply(5, 1, "apply", NO_DEADLINE, undefined, "apply");
 * pending.settle(5, 1, "ok");
 * console.log((await done).response); // "ok"
 * ```
 */
export class PendingOperations {
  #clock: Clock;
  #commitSeconds: HistogramRecorder;
  #commitIndex: () => number;
  #lease: ReadLease;
  /** By log index: a queue, not a Map (proposals come and go in index order). */
  #applies = new IndexQueue<PendingApply>();
  #reads = new Map<number, PendingRead>();
  #readsAwaitingApply: PendingRead[] = [];
  #transfers: TransferWaiter[] = [];
  #persistWaiters: PersistWaiter[] = [];
  /** How many waiting operations have a finite deadline (0: nothing to check on a tick). */
  #deadlines = 0;
  #nextReadId = 1;

  /**
   * @param clock Measures commit latency and deadlines.
   * @param commitSeconds Where commit latencies go.
   * @param commitIndex The node's commit index (an abort reports whether its entry committed).
   * @param lease Judges lease reads when they are served.
   */
  constructor(
    clock: Clock,
    commitSeconds: HistogramRecorder,
    commitIndex: () => number,
    lease: ReadLease,
  ) {
    this.#clock = clock;
    this.#commitSeconds = commitSeconds;
    this.#commitIndex = commitIndex;
    this.#lease = lease;
  }

  /** Whether a read waits for a confirmation from the core. */
  get readsWaiting(): boolean {
    return this.#reads.size > 0;
  }

  /** A fresh id for a read request. */
  nextReadId(): number {
    return this.#nextReadId++;
  }

  // ------------------------------------------------------------ proposals

  /** Wait for the entry at `index` (proposed in `term`) to be applied. */
  addApply(
    index: number,
    term: number,
    kind: "apply" | "index",
    deadline: Deadline,
    signal: AbortSignal | undefined,
    op: string,
  ): Promise<ApplyResult<unknown>> {
    const { promise, resolve, reject } = deferred<ApplyResult<unknown>>();
    const pending: PendingApply = {
      term,
      resolve,
      reject,
      start: this.#clock.now(),
      deadline: deadline.at,
      op,
      timeoutMs: deadline.ms,
      kind,
    };
    this.#applies.set(index, pending);
    if (deadline.at !== Infinity) this.#deadlines++;
    if (signal) this.#watchApplySignal(signal, index, pending, op);
    return promise;
  }

  #watchApplySignal(signal: AbortSignal, index: number, p: PendingApply, op: string): void {
    const onAbort = () => {
      if (this.#applies.get(index) !== p) return;
      this.#applies.delete(index);
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(
        new AbortError(op, index <= this.#commitIndex() ? "committed" : "unknown", {
          cause: signal.reason,
        }),
      );
    };
    signal.addEventListener("abort", onAbort, { once: true });
    // However the operation ends, stop listening: a long-lived signal must not
    // accumulate one listener per operation.
    const { resolve, reject } = p;
    p.resolve = (r) => {
      signal.removeEventListener("abort", onAbort);
      resolve(r);
    };
    p.reject = (e) => {
      signal.removeEventListener("abort", onAbort);
      reject(e);
    };
  }

  /** The entry at `index` of `term` was applied with `response`. */
  settle(index: number, term: number, response: unknown): void {
    const p = this.#applies.get(index);
    if (!p) return;
    this.#applies.delete(index);
    if (p.deadline !== Infinity) this.#deadlines--;
    if (p.term !== term) {
      p.reject(
        new LeadershipLostError(
          "not_committed",
          `entry ${index} was overwritten by a newer leader`,
        ),
      );
      return;
    }
    this.#commitSeconds.observe((this.#clock.now() - p.start) / 1000);
    p.resolve(
      p.kind === "apply" ? { index, term, response } : { index, term, response: undefined },
    );
  }

  /** Leadership was lost: what is not committed may never be. */
  rejectUncommitted(commit: number): void {
    for (const [index, p] of this.#applies) {
      if (index <= commit) continue; // committed: it will be applied and resolved
      this.#applies.delete(index);
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(new LeadershipLostError("unknown"));
    }
  }

  /** The applied index jumps past pending operations (snapshot): their entries were replaced. */
  supersede(index: number): void {
    for (const [i, p] of this.#applies) {
      if (i > index) continue;
      this.#applies.delete(i);
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(new LeadershipLostError("unknown", `entry ${i} was superseded by a snapshot`));
    }
  }

  // ---------------------------------------------------------------- reads

  /** Wait for read `id` to be confirmed (and, with `waitApply`, applied up to its index). */
  addRead(
    id: number,
    waitApply: boolean,
    deadline: Deadline,
    signal: AbortSignal | undefined,
    op: string,
  ): Promise<number> {
    const { promise, resolve, reject } = deferred<number>();
    const pending: PendingRead = {
      id,
      resolve,
      reject,
      deadline: deadline.at,
      op,
      timeoutMs: deadline.ms,
      waitApply,
      index: 0,
    };
    this.#reads.set(id, pending);
    if (deadline.at !== Infinity) this.#deadlines++;
    if (signal) {
      const onAbort = () => {
        if (this.#reads.get(id) === pending) this.#reads.delete(id);
        else {
          const at = this.#readsAwaitingApply.indexOf(pending);
          if (at < 0) return;
          this.#readsAwaitingApply.splice(at, 1);
        }
        if (pending.deadline !== Infinity) this.#deadlines--;
        pending.reject(new AbortError(op, "not_committed", { cause: signal.reason }));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      pending.resolve = (index) => {
        signal.removeEventListener("abort", onAbort);
        resolve(index);
      };
      pending.reject = (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      };
    }
    return promise;
  }

  /**
   * The core confirmed read `id` at `index` (from the lease resting on
   * `leaseRound`, if given); `applied` is the FSM's applied index.
   */
  readConfirmed(id: number, index: number, applied: number, leaseRound?: number): void {
    const p = this.#reads.get(id);
    if (!p) return;
    this.#reads.delete(id);
    p.index = index;
    p.leaseRound = leaseRound;
    if (!p.waitApply || applied >= index) this.#serveRead(p);
    else this.#readsAwaitingApply.push(p);
  }

  /**
   * Resolve a confirmed read, judging its lease now: a lease that no longer
   * holds (the process was paused, leadership moved) makes it a ReadIndex.
   */
  #serveRead(p: PendingRead): void {
    if (p.leaseRound !== undefined && !this.#lease.holds(p.leaseRound)) {
      p.leaseRound = undefined;
      const refused = this.#lease.reissue(p.id);
      if (refused === undefined) {
        this.#reads.set(p.id, p); // waits for the ReadIndex's confirmation
        return;
      }
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(refused);
      return;
    }
    if (p.deadline !== Infinity) this.#deadlines--;
    p.resolve(p.index);
  }

  /** The core dropped read `id` (leadership lost before it was confirmed). */
  dropRead(id: number, error: Error): void {
    const p = this.#reads.get(id);
    if (!p) return;
    this.#reads.delete(id);
    if (p.deadline !== Infinity) this.#deadlines--;
    p.reject(error);
  }

  /** Resolve the confirmed reads whose index the FSM has reached. */
  releaseReads(applied: number): void {
    if (this.#readsAwaitingApply.length === 0) return;
    const ready: PendingRead[] = [];
    let kept = 0;
    for (const p of this.#readsAwaitingApply) {
      if (p.index <= applied) ready.push(p);
      else this.#readsAwaitingApply[kept++] = p;
    }
    this.#readsAwaitingApply.length = kept;
    for (const p of ready) this.#serveRead(p);
  }

  // ------------------------------------------------------------ transfers

  /**
   * Wait for a leadership transfer to end, or for `signal` to abort the
   * wait (as at the deadline, the core's transfer goes on until it ends).
   */
  addTransfer(deadline: Deadline, signal?: AbortSignal): Promise<void> {
    const { promise, resolve, reject } = deferred<void>();
    const waiter: TransferWaiter = {
      resolve,
      reject,
      deadline: deadline.at,
      timeoutMs: deadline.ms,
    };
    this.#transfers.push(waiter);
    if (signal === undefined) return promise;
    const onAbort = () => {
      this.#transfers = this.#transfers.filter((w) => w !== waiter);
      reject(new AbortError("leadershipTransfer", "not_committed", { cause: signal.reason }));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    // However the wait ends, stop listening: a long-lived signal must not
    // keep every transfer it ever watched.
    const stop = () => signal.removeEventListener("abort", onAbort);
    promise.then(stop, stop);
    return promise;
  }

  /**
   * On every tick and role change: a transfer is done once another node
   * leads. It fails when the core drops it, when leadership comes back here,
   * when no successor is heard of in time after stepping down, or at its
   * deadline.
   */
  checkTransfers(view: LeadershipView): void {
    if (this.#transfers.length === 0) return;
    const now = this.#clock.now();
    const kept = [];
    for (const w of this.#transfers) {
      if (view.otherLeader) w.resolve();
      else if (view.leading && w.steppedDownAt !== undefined) {
        w.reject(new LeadershipTransferError("leadership came back to this node"));
      } else if (view.leading && view.transferAborted) {
        w.reject(
          new LeadershipTransferError("the target did not take over within an election timeout"),
        );
      } else if (w.deadline <= now) {
        w.reject(new TimeoutError("leadershipTransfer", w.timeoutMs, "not_committed"));
      } else if (!view.leading && now - (w.steppedDownAt ??= now) > view.successorWithin) {
        w.reject(
          new LeadershipTransferError(
            `this node stepped down, but no other node has taken over within ${view.successorWithin} ms`,
          ),
        );
      } else kept.push(w);
    }
    this.#transfers = kept;
  }

  // -------------------------------------------------------------- persist

  /** Wait until the Ready numbered `seq` is durable. */
  addPersistWaiter(seq: number): Promise<void> {
    const { promise, resolve, reject } = deferred<void>();
    this.#persistWaiters.push({ seq, resolve, reject });
    return promise;
  }

  /** Readies up to `seq` are durable. */
  releasePersisted(seq: number): void {
    if (this.#persistWaiters.length === 0) return;
    const done = this.#persistWaiters.filter((w) => w.seq <= seq);
    this.#persistWaiters = this.#persistWaiters.filter((w) => w.seq > seq);
    for (const w of done) w.resolve();
  }

  // ------------------------------------------------------------ deadlines

  /**
   * On every tick, and while `shutdown()` waits for the disk (no ticks then):
   * reject what is past its deadline.
   */
  checkDeadlines(): void {
    const now = this.#clock.now();
    // Transfers too: a transfer asked for just before `shutdown()` would
    // otherwise wait for the whole shutdown (up to storageTimeout).
    if (this.#transfers.some((w) => w.deadline <= now)) {
      this.#transfers = this.#transfers.filter((w) => {
        if (w.deadline > now) return true;
        w.reject(new TimeoutError("leadershipTransfer", w.timeoutMs, "not_committed"));
        return false;
      });
    }
    if (this.#deadlines <= 0) return;
    for (const [index, p] of this.#applies) {
      if (p.deadline <= now) {
        this.#applies.delete(index);
        this.#deadlines--;
        const outcome = index <= this.#commitIndex() ? "committed" : "unknown";
        p.reject(new TimeoutError(p.op, p.timeoutMs, outcome));
      }
    }
    for (const [id, p] of this.#reads) {
      if (p.deadline <= now) {
        this.#reads.delete(id);
        this.#deadlines--;
        p.reject(new TimeoutError(p.op, p.timeoutMs, "not_committed"));
      }
    }
    let kept = 0;
    for (const p of this.#readsAwaitingApply) {
      if (p.deadline <= now) {
        this.#deadlines--;
        p.reject(new TimeoutError(p.op, p.timeoutMs, "not_committed"));
      } else this.#readsAwaitingApply[kept++] = p;
    }
    this.#readsAwaitingApply.length = kept;
  }

  /** Reject everything (shutdown or failure). */
  rejectAll(error: Error): void {
    // A proposal in flight may be on a follower's disk already (the leader
    // sends as it writes) and commit under the next leader: reporting it as
    // failed would invite a duplicate retry. Its outcome is unknown, or
    // committed when this node knew it was.
    const commit = this.#commitIndex();
    for (const [index, p] of this.#applies) {
      const outcome = index <= commit ? "committed" : "unknown";
      p.reject(
        new LeadershipLostError(
          outcome,
          `${error.message}; entry ${index} was in flight (outcome: ${outcome})`,
          { cause: error },
        ),
      );
    }
    this.#applies.clear();
    for (const p of this.#reads.values()) p.reject(error);
    this.#reads.clear();
    for (const p of this.#readsAwaitingApply) p.reject(error);
    this.#readsAwaitingApply = [];
    for (const w of this.#transfers) w.reject(error);
    this.#transfers = [];
    for (const w of this.#persistWaiters) w.reject(error);
    this.#persistWaiters = [];
    this.#deadlines = 0;
  }
}
