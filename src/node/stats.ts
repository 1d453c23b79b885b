/**
 * What a node reports about itself: counters, gauges and latency histograms
 * for metrics and status pages, and when the leader was last heard from.
 *
 * @module
 */

import type { NodeParts } from "./start.ts";
import type { RaftStats } from "./types.ts";

/**
 * `Date.now()`-style time of the last message from the leader: now on the
 * leader, `undefined` before any.
 *
 * @example
 * ```ts
 * import type { NodeParts } from "./start.ts";
 * import { lastContact } from "./stats.ts";
 * function silentFor(parts: NodeParts<unknown>): number | undefined {
 *   const at = lastContact(parts);
 *   return at === undefined ? undefined : parts.clock.wallClock() - at;
 * }
 * ```
 */
export function lastContact<R>(parts: NodeParts<R>): number | undefined {
  const { core, clock, loop } = parts;
  if (core.state === "leader") return clock.wallClock();
  const at = loop.lastContactAt;
  return at === undefined ? undefined : clock.wallClock() - (clock.now() - at);
}

/**
 * The node's statistics, gathered from its collaborators.
 *
 * @example
 * ```ts
 * import type { NodeParts } from "./start.ts";
 * import { collectStats } from "./stats.ts";
 * function fsyncsOf(parts: NodeParts<unknown>): number {
 *   return collectStats(parts).fsyncs;
 * }
 * ```
 */
export function collectStats<R>(parts: NodeParts<R>): RaftStats {
  const { node, core, clock, loop, snapshots, pipeline, loader } = parts;
  const conf = core.latestConfiguration();
  const last = snapshots.last;
  const contactAt = loop.lastContactAt;
  const memory = core.memoryUse();
  return {
    id: node.id,
    state: parts.lifecycle.state(core.state),
    term: core.term,
    leaderId: core.leader || undefined,
    lastLogIndex: core.lastIndex,
    lastLogTerm: core.lastTerm,
    commitIndex: core.commitIndex,
    appliedIndex: parts.runner.appliedIndex,
    lastSnapshotIndex: last.index,
    lastSnapshotTerm: last.term,
    lastSnapshotSize: last.size,
    lastContactMs: core.state === "leader"
      ? 0
      : contactAt === undefined
      ? undefined
      : clock.now() - contactAt,
    numPeers: conf.configuration.servers.filter((s) => s.id !== node.id).length,
    configurationIndex: conf.index,
    fsyncs: pipeline.fsyncs,
    storeLogsSeconds: pipeline.storeLogsSeconds.snapshot(),
    applySeconds: parts.applySeconds.snapshot(),
    commitSeconds: parts.commitSeconds.snapshot(),
    messagesSent: loop.messagesSent,
    messagesReceived: loop.messagesReceived,
    snapshotsTaken: snapshots.taken,
    snapshotsInstalled: snapshots.installed,
    logEntriesInMemory: memory.entries,
    logBytesInMemory: memory.bytes,
    logReads: loader.reads,
    logEntriesRead: loader.entriesRead,
  };
}
