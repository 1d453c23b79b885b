/**
 * How a node stops: `shutdown()` on request, or a failure of storage or the
 * FSM it cannot go on from. Either way every timer goes, the transport
 * closes, and every pending operation is told.
 *
 * @module
 */

import type { ResolvedConfig } from "../config.ts";
import type { RaftCore } from "../core/raft_core.ts";
import type { RaftState, ServerId } from "../core/types.ts";
import { ShutdownError, StorageError } from "../errors.ts";
import type { Clock } from "../platform/clock.ts";
import type { Transport } from "../transport/types.ts";
import type { NodeContext } from "./context.ts";
import type { Observers } from "./observers.ts";
import type { PendingOperations } from "./pending.ts";
import type { ReadyLoop } from "./ready_loop.ts";
import type { Snapshots } from "./snapshots.ts";
import type { NodeTimers } from "./timers.ts";
import type { WritePipeline } from "./write_pipeline.ts";

/** What stopping touches. */
export interface LifecycleParts {
  /** This server's id. */
  id: ServerId;
  /** The protocol state machine. */
  core: RaftCore;
  /** The node's clock. */
  clock: Clock;
  /** Whether the node created the clock (and so closes it when it stops). */
  ownsClock: boolean;
  /** Every timer of the node. */
  timers: NodeTimers;
  /** How messages reach other servers. */
  transport: Transport;
  /** The settings in force. */
  config(): ResolvedConfig;
  /** Snapshots being taken or installed, and the snapshot timer. */
  snapshots: Pick<Snapshots<unknown>, "settled" | "stopTimer">;
  /** The write in flight and the commit hint. */
  pipeline: Pick<WritePipeline, "idle" | "flushCommitHint">;
  /** Operations waiting on the node. */
  pending: Pick<PendingOperations, "rejectAll" | "checkDeadlines">;
  /** The Ready loop (its reported state; a last message on failure). */
  loop: Pick<ReadyLoop<unknown>, "state" | "send">;
  /** Who is told the node stopped. */
  observers: Pick<Observers, "emit">;
}

/**
 * Throw the error of an operation on a node that no longer runs:
 * {@linkcode ShutdownError} after `shutdown()`, {@linkcode StorageError}
 * after a failure.
 *
 * @example
 * ```ts
 * import type { NodeContext } from "./context.ts";
 * import { checkRunning } from "./lifecycle.ts";
 * function snapshotNow(node: NodeContext): void {
 *   checkRunning(node); // ShutdownError or StorageError once stopped
 *   node.scheduleReady();
 * }
 * ```
 */
export function checkRunning(node: Pick<NodeContext, "isShutdown" | "failure">): void {
  if (node.isShutdown()) throw new ShutdownError();
  const failed = node.failure();
  if (failed) throw new StorageError(`raft stopped after a storage failure: ${failed.message}`);
}

/**
 * Whether the node runs, and the two ways it stops.
 *
 * @example
 * ```ts
 * import type { Lifecycle } from "./lifecycle.ts";
 * async function stop(lifecycle: Lifecycle): Promise<void> {
 *   await lifecycle.shutdown(); // idempotent
 *   console.log(lifecycle.state("leader")); // "shutdown"
 * }
 * ```
 */
export class Lifecycle {
  #parts: () => LifecycleParts;
  #shutdown = false;
  #failed: Error | undefined;

  /** The lifecycle of the node whose parts `parts` returns (they are wired after it). */
  constructor(parts: () => LifecycleParts) {
    this.#parts = parts;
  }

  /** Whether `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#shutdown;
  }

  /** Why the node stopped after a failure, if it did. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  /** The role to report: `coreState` while the node runs, `"shutdown"` once it stopped. */
  state(coreState: RaftState): RaftState {
    return this.#shutdown || this.#failed ? "shutdown" : coreState;
  }

  /**
   * Stop on request: timers, transport, then the snapshot and the write in
   * flight may finish (at most `storageTimeout`; operations whose deadline
   * passes meanwhile time out), the commit hint is written, and pending
   * operations reject (see `PendingOperations.rejectAll`).
   * Idempotent; never rejects.
   */
  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    const p = this.#parts();
    const log = p.config().logger;
    p.timers.cancelAll();
    p.snapshots.stopTimer();
    p.loop.state = "shutdown";
    // The ticks are stopped, but the deadlines of operations still fall due
    // while the transport closes (it waits for its sends, a snapshot stream
    // among them) and the disk finishes (a slow one takes up to storageTimeout).
    const stopSweeping = this.#sweepDeadlines();
    try {
      try {
        await p.transport.close();
      } catch (e) {
        log.warn("closing transport failed: {error}", { error: String(e) });
      }
      await this.#settleWithin(
        p.snapshots.settled.then(() => p.pipeline.idle()),
        p.config().storageTimeout,
      );
      if (!this.#failed) {
        try {
          // Only the commit index of a persisted Ready: its entries are on disk.
          await p.pipeline.flushCommitHint();
        } catch (e) {
          log.warn("writing the commit hint at shutdown failed: {error}", { error: String(e) });
        }
      }
    } finally {
      stopSweeping();
    }
    p.pending.rejectAll(new ShutdownError());
    p.observers.emit({ type: "state", state: "shutdown", term: p.core.term });
    if (p.ownsClock) p.clock.close();
  }

  /** Stop after `error` (while `during`): a leader hands over first if it can. */
  fail(error: Error, during: string): void {
    if (this.#failed) return;
    this.#failed = error;
    const p = this.#parts();
    p.config().logger.error("raft {id} stopped after an error while {during}: {error}", {
      id: p.id,
      during,
      error: error.stack ?? String(error),
    });
    if (p.core.state === "leader") {
      // Try to hand over; our messages still go out even though our disk failed.
      try {
        p.core.transferLeadership();
        while (p.core.hasReady()) {
          for (const m of p.core.ready().messages) {
            if (m.type === "timeout_now") p.loop.send(m);
          }
        }
      } catch {
        // No voter to hand over to: followers will time out.
      }
    }
    p.timers.cancelAll();
    p.snapshots.stopTimer();
    if (p.ownsClock) p.clock.close();
    const err = new StorageError(`raft stopped after a failure while ${during}: ${error.message}`, {
      cause: error,
    });
    p.pending.rejectAll(err);
    p.loop.state = "shutdown";
    void p.transport.close().catch(() => {});
    p.observers.emit({ type: "state", state: "shutdown", term: p.core.term });
  }

  /**
   * Reject operations past their deadline now, then every half heartbeat (a
   * tick) until the returned stop. Now, not a tick from now: the tick that
   * `shutdown()` cancelled may have been all but due, and a deadline passed
   * since the last one would wait up to two ticks.
   */
  #sweepDeadlines(): () => void {
    const p = this.#parts();
    const clock = p.clock;
    const every = Math.max(1, Math.floor(p.config().heartbeatInterval / 2));
    let handle: unknown;
    const sweep = () => {
      p.pending.checkDeadlines();
      handle = clock.setTimeout(sweep, every);
    };
    sweep();
    return () => clock.clearTimeout(handle);
  }

  /** Wait for `promise` at most `ms`; the timer goes as soon as either settles. */
  async #settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
    const clock = this.#parts().clock;
    let handle: unknown;
    const timeout = new Promise<void>((resolve) => {
      handle = clock.setTimeout(resolve, ms);
    });
    try {
      await Promise.race([promise.catch(() => {}), timeout]);
    } finally {
      clock.clearTimeout(handle);
    }
  }
}
