/**
 * How a node's settings in milliseconds become the core's settings in ticks.
 *
 * @module
 */

import type { ResolvedConfig } from "../config.ts";
import type { CoreOptions } from "../core/raft_core.ts";

/**
 * The core counts time in ticks of half a heartbeat interval; `tickMs`, when
 * given, keeps the tick of a running node (a reload changes only the counts).
 * `leaseMs` is how long a lease lasts on the clock after the acknowledged
 * heartbeat was sent.
 *
 * @example
 * ```ts
 * import { validateConfig } from "../config.ts";
 * import { coreOptionsFor } from "./timing.ts";
 * const { tickMs, coreOptions } = coreOptionsFor(validateConfig({ id: "n1" }));
 * console.log(tickMs, coreOptions.heartbeatTicks, coreOptions.electionTicks); // 50 2 20
 * ```
 */
export function coreOptionsFor(
  config: ResolvedConfig,
  tickMs?: number,
): { tickMs: number; leaseMs: number; coreOptions: CoreOptions } {
  const tick = tickMs ?? Math.max(1, Math.floor(config.heartbeatInterval / 2));
  const heartbeatTicks = Math.max(1, Math.round(config.heartbeatInterval / tick));
  const electionTicks = Math.max(heartbeatTicks * 2, Math.round(config.electionTimeout / tick));
  // Leave a margin for clock drift between leader and followers (10%, at least 2 ticks).
  const leaseTicks = Math.max(
    1,
    Math.min(
      electionTicks - 2,
      Math.floor(electionTicks * 0.9),
      Math.floor(config.leaderLeaseTimeout / tick),
    ),
  );
  return {
    tickMs: tick,
    // The lease on the clock is exactly the core's lease in ticks (lease.ts has the safety argument).
    leaseMs: leaseTicks * tick,
    coreOptions: {
      id: config.id,
      electionTicks,
      heartbeatTicks,
      leaseTicks,
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      maxAppendEntries: config.maxAppendEntries,
      maxAppendBytes: config.maxAppendBytes,
      maxInflight: config.maxInflightAppends,
      catchupMargin: config.catchupMargin,
      autoPromoteNonvoters: config.autoPromoteNonvoters,
      maxApplyBatch: config.maxApplyBatch,
      maxCacheBytes: config.logCacheBytes,
      // What waits for the FSM is bounded like one append: a slow or blocked
      // FSM (a snapshot being restored) holds back the rest in the log.
      maxApplyBytes: config.maxAppendBytes,
      random: config.random,
    },
  };
}
