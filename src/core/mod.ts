/**
 * The Raft protocol as a pure, deterministic state machine: no I/O, no
 * clock, no randomness of its own. Drive it with ticks and messages, and
 * carry out the {@linkcode Ready} batches it returns.
 *
 * @example
 * ```ts
 * import { RaftCore } from "./mod.ts";
 * const core = new RaftCore({
 *   id: "n1", electionTicks: 10, heartbeatTicks: 1, leaseTicks: 8, preVote: true,
 *   checkQuorum: true, maxAppendEntries: 64, maxAppendBytes: 1 << 20, maxInflight: 8,
 *   catchupMargin: 10, autoPromoteNonvoters: false, maxApplyBatch: 64, random: Math.random,
 * }, { entries: [] });
 * console.log(core.state); // "follower"
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./raft_core.ts";
export * from "./membership.ts";
export { ENTRY_OVERHEAD_BYTES, entryBytes, RaftLog } from "./log.ts";
export { TermIndex, type TermRun } from "./term_index.ts";
export { type StoredLog, StoredLogBuilder } from "./stored_log.ts";
export { Inflights, Progress, type ProgressState } from "./progress.ts";
export { ReadOnlyQueue } from "./read_only.ts";
