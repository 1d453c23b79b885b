/**
 * Changing a running node's timing and snapshot settings (`reloadConfig`).
 *
 * @module
 */

import { type ReloadableConfig, resolveReload } from "../config.ts";
import type { NodeParts } from "./start.ts";
import { coreOptionsFor } from "./timing.ts";

/**
 * Check `changes` against the settings in force and apply them: the core's
 * counts of ticks (the tick itself stays), the lease, the snapshot timer.
 * Throws (`TypeError`, `RangeError`) before changing anything.
 *
 * @example
 * ```ts
 * import { reloadConfig } from "./reload.ts";
 * import type { NodeParts } from "./start.ts";
 * function snapshotMoreOften(parts: NodeParts<unknown>): void {
 *   reloadConfig(parts, { snapshotThreshold: 1000, snapshotInterval: 30_000 });
 * }
 * ```
 */
export function reloadConfig<R>(parts: NodeParts<R>, changes: ReloadableConfig): void {
  const next = resolveReload(parts.config, changes);
  parts.config = next;
  const { coreOptions, leaseMs } = coreOptionsFor(next, parts.tickMs);
  parts.lease.leaseMs = leaseMs;
  parts.core.reconfigure({
    electionTicks: coreOptions.electionTicks,
    heartbeatTicks: coreOptions.heartbeatTicks,
    leaseTicks: coreOptions.leaseTicks,
    autoPromoteNonvoters: coreOptions.autoPromoteNonvoters,
  });
  const { lifecycle } = parts;
  if (!lifecycle.isShutdown && !lifecycle.failure) parts.snapshots.armTimer();
}
