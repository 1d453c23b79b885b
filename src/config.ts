/**
 * Configuration of a {@linkcode Raft} node, its defaults and validation.
 *
 * @module
 */

import type { ServerId } from "./core/types.ts";

/**
 * Tunables of a Raft node. Only `id` is required; the defaults suit a LAN.
 *
 * @example
 * ```ts
 * import { validateConfig } from "./config.ts";
 * const config = validateConfig({ id: "n1", electionTimeout: 1500 });
 * console.log(config.heartbeatInterval); // 100
 * ```
 */
export interface Config {
  /** This server's id; must match its id in the cluster configuration. */
  id: ServerId;
  /** How often the leader sends heartbeats, in ms. Default 100. */
  heartbeatInterval?: number;
  /**
   * How long a follower waits without hearing from a leader before it starts
   * an election, in ms; randomized in [t, 2t). Default 1000. Must be at least
   * twice `heartbeatInterval`.
   */
  electionTimeout?: number;
  /**
   * How long a leader may serve lease reads after hearing from a quorum, in
   * ms. Must be less than `electionTimeout` (the margin covers clock drift).
   * Default 0.8 × electionTimeout. Needs `checkQuorum`.
   */
  leaderLeaseTimeout?: number;
  /** Ask "would you vote for me?" before a real election, so a partitioned node does not inflate terms. Default true. */
  preVote?: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. Default true. */
  checkQuorum?: boolean;
  /** Most entries in one AppendEntries. Default 512. */
  maxAppendEntries?: number;
  /** Most payload bytes in one AppendEntries. Default 1 MiB. */
  maxAppendBytes?: number;
  /** Most AppendEntries in flight to one follower (pipelining). Default 128. */
  maxInflightAppends?: number;
  /** Take a snapshot after this many entries were applied since the last one. Default 8192. */
  snapshotThreshold?: number;
  /** How often to check `snapshotThreshold`, in ms. Default 30000 (0 disables timed checks). */
  snapshotInterval?: number;
  /** Entries kept in the log behind a snapshot, so slow followers need no InstallSnapshot. Default 10240. */
  trailingLogs?: number;
  /** Snapshots to keep in the snapshot store. Default 2. */
  retainSnapshots?: number;
  /**
   * Promote non-voters to voters automatically once caught up (autopilot-like).
   * Staging servers (from `addVoter`) are always promoted. Default false.
   */
  autoPromoteNonvoters?: boolean;
  /** A staging server is caught up when it is within this many entries of the leader. Default 64. */
  catchupMargin?: number;
  /** A storage write that takes longer than this (ms) makes a leader step down. Default 10000. */
  storageTimeout?: number;
  /** Most entries handed to the FSM in one batch. Default 512. */
  maxApplyBatch?: number;
  /** Source of randomness in [0, 1) for election timeouts; seed it for replayable tests. Default Math.random. */
  random?: () => number;
}

/** A {@linkcode Config} with every default filled in. */
export type ResolvedConfig = Required<Config>;

/** Fields `reloadConfig` may change at run time. */
export type ReloadableConfig = Pick<
  Config,
  | "heartbeatInterval"
  | "electionTimeout"
  | "leaderLeaseTimeout"
  | "snapshotThreshold"
  | "snapshotInterval"
  | "trailingLogs"
  | "autoPromoteNonvoters"
>;

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`config.${name} must be a positive integer, got ${value}`);
  }
}

function nonNegativeInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`config.${name} must be a non-negative integer, got ${value}`);
  }
}

/**
 * Fill in defaults and check every field; throws a `TypeError` or
 * `RangeError` naming the field, what was expected and what was given.
 *
 * @example
 * ```ts
 * import { validateConfig } from "./config.ts";
 * try {
 *   validateConfig({ id: "n1", heartbeatInterval: 500, electionTimeout: 200 });
 * } catch (e) {
 *   console.log((e as RangeError).message);
 * }
 * ```
 */
export function validateConfig(config: Config): ResolvedConfig {
  if (config === null || typeof config !== "object") {
    throw new TypeError(
      `config must be an object, got ${config === null ? "null" : typeof config}`,
    );
  }
  if (typeof config.id !== "string" || config.id.length === 0) {
    throw new TypeError(`config.id must be a non-empty string, got ${JSON.stringify(config.id)}`);
  }
  const heartbeatInterval = config.heartbeatInterval ?? 100;
  const electionTimeout = config.electionTimeout ?? 1000;
  positiveInteger("heartbeatInterval", heartbeatInterval);
  positiveInteger("electionTimeout", electionTimeout);
  if (electionTimeout < 2 * heartbeatInterval) {
    throw new RangeError(
      `config.electionTimeout (${electionTimeout} ms) must be at least twice config.heartbeatInterval (${heartbeatInterval} ms)`,
    );
  }
  const leaderLeaseTimeout = config.leaderLeaseTimeout ?? Math.floor(electionTimeout * 0.8);
  positiveInteger("leaderLeaseTimeout", leaderLeaseTimeout);
  if (leaderLeaseTimeout >= electionTimeout) {
    throw new RangeError(
      `config.leaderLeaseTimeout (${leaderLeaseTimeout} ms) must be less than config.electionTimeout (${electionTimeout} ms)`,
    );
  }
  const resolved: ResolvedConfig = {
    id: config.id,
    heartbeatInterval,
    electionTimeout,
    leaderLeaseTimeout,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    maxAppendEntries: config.maxAppendEntries ?? 512,
    maxAppendBytes: config.maxAppendBytes ?? 1024 * 1024,
    maxInflightAppends: config.maxInflightAppends ?? 128,
    snapshotThreshold: config.snapshotThreshold ?? 8192,
    snapshotInterval: config.snapshotInterval ?? 30_000,
    trailingLogs: config.trailingLogs ?? 10240,
    retainSnapshots: config.retainSnapshots ?? 2,
    autoPromoteNonvoters: config.autoPromoteNonvoters ?? false,
    catchupMargin: config.catchupMargin ?? 64,
    storageTimeout: config.storageTimeout ?? 10_000,
    maxApplyBatch: config.maxApplyBatch ?? 512,
    random: config.random ?? Math.random,
  };
  positiveInteger("maxAppendEntries", resolved.maxAppendEntries);
  positiveInteger("maxAppendBytes", resolved.maxAppendBytes);
  positiveInteger("maxInflightAppends", resolved.maxInflightAppends);
  positiveInteger("snapshotThreshold", resolved.snapshotThreshold);
  nonNegativeInteger("snapshotInterval", resolved.snapshotInterval);
  nonNegativeInteger("trailingLogs", resolved.trailingLogs);
  positiveInteger("retainSnapshots", resolved.retainSnapshots);
  nonNegativeInteger("catchupMargin", resolved.catchupMargin);
  positiveInteger("storageTimeout", resolved.storageTimeout);
  positiveInteger("maxApplyBatch", resolved.maxApplyBatch);
  for (const flag of ["preVote", "checkQuorum", "autoPromoteNonvoters"] as const) {
    if (typeof resolved[flag] !== "boolean") {
      throw new TypeError(`config.${flag} must be a boolean, got ${typeof resolved[flag]}`);
    }
  }
  if (typeof resolved.random !== "function") {
    throw new TypeError(`config.random must be a function, got ${typeof resolved.random}`);
  }
  return resolved;
}
