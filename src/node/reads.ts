/**
 * Linearizable reads on the leader: a ReadIndex heartbeat round, or the
 * leader lease judged on the clock at the moment the read is served.
 *
 * @module
 */

import { asAbortError } from "./abort.ts";
import type { NodeContext } from "./context.ts";
import type { FsmRunner } from "./fsm_runner.ts";
import type { LeaseClock } from "./lease.ts";
import { checkRunning } from "./lifecycle.ts";
import { operationDeadline, type PendingOperations } from "./pending.ts";
import type { ReadyLoop } from "./ready_loop.ts";
import type { OperationOptions } from "./types.ts";

/** What a read needs besides the node. */
export interface ReadParts {
  /** Operations waiting on the node. */
  pending: PendingOperations;
  /** The Ready loop, woken to send the heartbeat round. */
  loop: Pick<ReadyLoop<unknown>, "schedule" | "scheduleSoon">;
  /** What the FSM has applied. */
  runner: Pick<FsmRunner<unknown>, "appliedIndex">;
  /** When each heartbeat round was sent. */
  lease: Pick<LeaseClock, "holds">;
}

/**
 * A read point confirmed by the leader: with `lease`, a lease holding now
 * serves it at once; otherwise (or when it does not hold) a heartbeat round
 * confirms leadership. With `waitApply`, resolves once the FSM applied up to
 * it. Never throws (rejects).
 *
 * @example
 * ```ts
 * import type { NodeContext } from "./context.ts";
 * import { read, type ReadParts } from "./reads.ts";
 * function readIndex(node: NodeContext, parts: ReadParts): Promise<number> {
 *   return read(node, parts, { lease: false, waitApply: true, op: "readIndex" }, { timeout: 500 });
 * }
 * ```
 */
export function read(
  node: NodeContext,
  parts: ReadParts,
  how: { lease: boolean; waitApply: boolean; op: string },
  options: OperationOptions | undefined,
): Promise<number> {
  const { lease, waitApply, op } = how;
  const { pending, loop } = parts;
  try {
    checkRunning(node);
    const deadline = operationDeadline(node.clock, options, op);
    options?.signal?.throwIfAborted();
    const id = pending.nextReadId();
    if (lease) {
      // A lease holding now serves the read without the Ready loop: judged
      // on the clock here, and again if it must wait for the FSM.
      const point = node.core.leaseReadPoint();
      if (
        point !== undefined &&
        (point.leaseRound === undefined || parts.lease.holds(point.leaseRound))
      ) {
        const applied = parts.runner.appliedIndex;
        if (!waitApply || applied >= point.index) return Promise.resolve(point.index);
        const promise = pending.addRead(id, waitApply, deadline, options?.signal, op);
        pending.readConfirmed(id, point.index, applied, point.leaseRound);
        return promise;
      }
    }
    // Nothing in flight: no batch to wait for, so the heartbeat round goes out at once.
    const idle = !pending.readsWaiting;
    node.core.readIndex(id, lease);
    const promise = pending.addRead(id, waitApply, deadline, options?.signal, op);
    if (idle) loop.scheduleSoon();
    else loop.schedule();
    return promise;
  } catch (e) {
    return Promise.reject(asAbortError(e, op));
  }
}
