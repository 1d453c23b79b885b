/**
 * Membership changes (add a voter or a non-voter, demote, remove) proposed
 * one server at a time. A change refused because the previous one has not
 * committed yet (right after an election, or right after another change) is
 * retried for a while instead of failing at once.
 *
 * @module
 */

import type { ConfigurationChange } from "../core/membership.ts";
import { AbortError, ConfigurationError } from "../errors.ts";
import { checkPrevIndex } from "./arguments.ts";
import type { NodeContext } from "./context.ts";
import { checkRunning } from "./lifecycle.ts";
import { operationDeadline, type PendingOperations } from "./pending.ts";
import type { Proposals } from "./proposals.ts";
import type { ReadyLoop } from "./ready_loop.ts";
import type { IndexResult, MembershipOptions } from "./types.ts";

/** How long a change waits at most for the previous one to commit. */
const RETRY_FOR_MS = 10_000;

/** What a membership change needs besides the node. */
export interface MembershipParts {
  /** Operations waiting on the node. */
  pending: PendingOperations;
  /** The Ready loop, woken after each proposal. */
  loop: Pick<ReadyLoop<unknown>, "schedule" | "noteConfiguration">;
  /** Refuses changes while a restore is in progress. */
  proposals: Pick<Proposals, "checkCanPropose">;
  /** The node's tick: how long to wait between retries. */
  tickMs: number;
}

/**
 * Propose `change` (for operation `op`) and resolve with its index once it
 * is applied here.
 *
 * @example
 * ```ts
 * import type { NodeContext } from "./context.ts";
 * import { changeMembership, type MembershipParts } from "./membership_changes.ts";
 * async function addReplica(node: NodeContext, parts: MembershipParts) {
 *   const change = { op: "addNonvoter" as const, id: "r1", address: "r1", updateAddress: false };
 *   const { index } = await changeMembership(node, parts, change, "addNonvoter", { timeout: 5000 });
 *   return index;
 * }
 * ```
 */
export async function changeMembership(
  node: NodeContext,
  parts: MembershipParts,
  change: ConfigurationChange,
  op: string,
  options: MembershipOptions | undefined,
): Promise<IndexResult> {
  checkRunning(node);
  const { clock, core, timers } = node;
  const deadline = operationDeadline(clock, options, op);
  const prevIndex = checkPrevIndex(options?.prevIndex, op);
  parts.proposals.checkCanPropose();
  // A change right after an election or another change waits (at most 10 s
  // or the timeout) for the previous one to commit instead of failing at once.
  const giveUp = Math.min(deadline.at, clock.now() + RETRY_FOR_MS);
  for (;;) {
    // Aborted before (or between) proposals: nothing was proposed.
    if (options?.signal?.aborted) {
      throw new AbortError(op, "not_committed", { cause: options.signal.reason });
    }
    try {
      const { index, term } = core.proposeConfigurationChange(change, prevIndex);
      parts.loop.noteConfiguration();
      const promise = parts.pending.addApply(index, term, "index", deadline, options?.signal, op);
      parts.loop.schedule();
      await promise;
      return { index };
    } catch (e) {
      const retriable = e instanceof ConfigurationError && prevIndex === 0 &&
        /in progress|not committed an entry/.test(e.message);
      if (!retriable || clock.now() + parts.tickMs > giveUp) throw e;
      await timers.sleep(parts.tickMs);
      checkRunning(node);
    }
  }
}
