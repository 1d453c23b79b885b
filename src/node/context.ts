/**
 * What the driver's collaborators share: the core, the clock and timers, the
 * settings, and the few things any of them may ask of the node as a whole.
 *
 * @module
 */

import type { ResolvedConfig } from "../config.ts";
import type { RaftCore } from "../core/raft_core.ts";
import type { ServerId } from "../core/types.ts";
import type { NotLeaderError } from "../errors.ts";
import type { Observation } from "./types.ts";
import type { Logger } from "../logger.ts";
import type { Clock } from "../platform/clock.ts";
import type { NodeTimers } from "./timers.ts";

/**
 * The node as its collaborators see it. `startNode` (start.ts) builds it; each
 * collaborator (pending operations, write pipeline, FSM runner, snapshots,
 * observers) holds one and nothing else of the others unless it needs it.
 *
 * @example
 * ```ts
 * import type { NodeContext } from "./context.ts";
 * function stepDownIfLeading(node: NodeContext): void {
 *   if (node.core.state === "leader") node.core.transferLeadership();
 *   node.scheduleReady();
 * }
 * ```
 */
export interface NodeContext {
  /** This server's id. */
  readonly id: ServerId;
  /** The protocol state machine. */
  readonly core: RaftCore;
  /** Time: monotonic `now()` for durations and deadlines, `wallClock()` for timestamps. */
  readonly clock: Clock;
  /** Every timer of the node, cancelled together at shutdown. */
  readonly timers: NodeTimers;
  /** Where the node reports what it does (`config.logger`). */
  readonly log: Logger;
  /** The settings in force (they change on `reloadConfig`). */
  config(): ResolvedConfig;
  /** Why the node stopped after a failure, if it did. */
  failure(): Error | undefined;
  /** Whether `shutdown()` was called. */
  isShutdown(): boolean;
  /** Stop the node after an error it cannot go on from (storage, FSM). */
  fail(error: Error, during: string): void;
  /** Drain the core soon (a macrotask: one Ready for everything this turn produced). */
  scheduleReady(): void;
  /** The error for an operation only a leader can do, naming the known leader. */
  notLeader(): NotLeaderError;
  /** Tell the observers. */
  emit(observation: Observation): void;
}
