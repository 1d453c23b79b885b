/**
 * Configuration of a {@linkcode Raft} node, its defaults and validation.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ServerId } from "./core/types.ts";
import { describeValue } from "./describe_value.ts";
import type { Logger } from "./logger.ts";

/**
 * The defaults of every {@linkcode Config} field: the one place they live.
 * {@linkcode validateConfig}, the `raftd serve --help` text and the docs all
 * read them from here. Three defaults are rules rather than values:
 * `leaderLeaseTimeout` is 0.8 × `electionTimeout`, `random` is
 * `Math.random`, and `logger` is LogTape's logger of the category
 * `["raftd", "raft"]` (silent until LogTape is configured).
 *
 * @example
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 * console.log(DEFAULT_CONFIG.heartbeatInterval, DEFAULT_CONFIG.electionTimeout); // 100 1000
 * ```
 */
export const DEFAULT_CONFIG: Readonly<
  Required<Omit<Config, "id" | "leaderLeaseTimeout" | "random" | "logger">>
> = Object.freeze(
  {
    heartbeatInterval: 100,
    electionTimeout: 1000,
    preVote: true,
    checkQuorum: true,
    maxAppendEntries: 512,
    maxAppendBytes: 1048576,
    maxInflightAppends: 128,
    snapshotThreshold: 8192,
    snapshotInterval: 30000,
    trailingLogs: 10240,
    retainSnapshots: 2,
    autoPromoteNonvoters: false,
    shutdownOnRemove: true,
    catchupMargin: 64,
    storageTimeout: 10000,
    maxApplyBatch: 512,
    logCacheBytes: 4194304,
  } as const,
);

/** What a {@linkcode Logger} must be able to do. */
const LOGGER_METHODS = ["debug", "info", "warn", "error"] as const;

/** The lease is this fraction of the election timeout unless `leaderLeaseTimeout` is given. */
const LEASE_FRACTION = 0.8;

/**
 * Tunables of a Raft node. Only `id` is required; every default is in
 * {@linkcode DEFAULT_CONFIG} and suits a LAN.
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
  /** How often the leader sends heartbeats, in ms. */
  heartbeatInterval?: number;
  /**
   * How long a follower waits without hearing from a leader before it starts
   * an election, in ms; randomized in [t, 2t). Must be at least twice
   * `heartbeatInterval`.
   */
  electionTimeout?: number;
  /**
   * How long a leader may serve lease reads after hearing from a quorum, in
   * ms. Must be less than `electionTimeout` (the margin covers clock drift).
   * Default 0.8 × electionTimeout. Needs `checkQuorum`.
   */
  leaderLeaseTimeout?: number;
  /** Ask "would you vote for me?" before a real election, so a partitioned node does not inflate terms. */
  preVote?: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. */
  checkQuorum?: boolean;
  /** Most entries in one AppendEntries. */
  maxAppendEntries?: number;
  /** Most payload bytes in one AppendEntries. */
  maxAppendBytes?: number;
  /** Most AppendEntries in flight to one follower (pipelining). */
  maxInflightAppends?: number;
  /** Take a snapshot after this many entries were applied since the last one. */
  snapshotThreshold?: number;
  /** How often to check `snapshotThreshold`, in ms (0 disables timed checks). */
  snapshotInterval?: number;
  /** Entries kept in the log behind a snapshot, so slow followers need no InstallSnapshot. */
  trailingLogs?: number;
  /**
   * Snapshots to keep in the snapshot store: after each snapshot taken,
   * installed or restored, the node removes older ones (with the store's
   * `remove()`; the store may keep fewer on its own).
   */
  retainSnapshots?: number;
  /**
   * Promote non-voters to voters automatically once caught up (autopilot-like).
   * Staging servers (from `addVoter`) are always promoted.
   */
  autoPromoteNonvoters?: boolean;
  /**
   * Shut the node down once it applies a configuration that no longer lists
   * it (it was removed), as hashicorp/raft's `ShutdownOnRemove`: three
   * election timeouts later, unless its log has by then a newer configuration
   * that lists it again (it was added back while it was down, and may be
   * needed to elect the leader that brings it). Either way
   * `Raft.removed` turns true and a `removed` observation is sent;
   * without it the node stays up as a follower that never campaigns, and can
   * be added again. Default true.
   */
  shutdownOnRemove?: boolean;
  /** A staging server is caught up when it is within this many entries of the leader. */
  catchupMargin?: number;
  /** A storage write that takes longer than this (ms) makes a leader step down. */
  storageTimeout?: number;
  /** Most entries handed to the FSM in one batch. */
  maxApplyBatch?: number;
  /**
   * Bytes of recent log entries a node keeps in memory (entry data plus 128
   * bytes each for the objects around it), so a leader sends recent entries
   * to its followers without reading its disk. Entries not yet on disk are
   * always kept; older ones are read back from the log store in batches of
   * at most `maxAppendBytes` when a follower or the FSM needs them, so memory
   * does not grow with the log. A follower keeps only what it has not
   * applied yet. 0 keeps nothing extra. Default 4 MiB.
   */
  logCacheBytes?: number;
  /** Source of randomness in [0, 1) for election timeouts; seed it for replayable tests. Default Math.random. */
  random?: () => number;
  /**
   * Where the node reports what it does: elections won and lost, snapshots,
   * membership changes, storage trouble. Default: LogTape's logger of the
   * category `["raftd", "raft"]`, silent until the application configures
   * LogTape. Any object with `debug/info/warn/error(message, properties)`
   * fits (see {@linkcode Logger}).
   */
  logger?: Logger;
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

/** A `TypeError` for a value of the wrong type, a `RangeError` for a number out of range. */
function integerError(name: string, expected: string, value: unknown): Error {
  const message = `config.${name} must be ${expected}, got ${describeValue(value)}`;
  return typeof value === "number" ? new RangeError(message) : new TypeError(message);
}

function positiveInteger(name: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw integerError(name, "a positive integer", value);
  }
}

function nonNegativeInteger(name: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw integerError(name, "a non-negative integer", value);
  }
}

/**
 * Fill in defaults from {@linkcode DEFAULT_CONFIG} and check every field.
 *
 * @throws {TypeError} when `config` is not an object, `id` is not a non-empty
 * string, a number is not a number, a flag is not a boolean or `random` is
 * not a function.
 * @throws {RangeError} when a number is out of range or two timings
 * contradict each other; the message names the field, what was expected and
 * what was given (with its type: `got string "1500"`).
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
    throw new TypeError(`config must be an object, got ${describeValue(config)}`);
  }
  if (typeof config.id !== "string" || config.id.length === 0) {
    throw new TypeError(`config.id must be a non-empty string, got ${describeValue(config.id)}`);
  }
  const heartbeatInterval = config.heartbeatInterval ?? DEFAULT_CONFIG.heartbeatInterval;
  const electionTimeout = config.electionTimeout ?? DEFAULT_CONFIG.electionTimeout;
  positiveInteger("heartbeatInterval", heartbeatInterval);
  positiveInteger("electionTimeout", electionTimeout);
  if (electionTimeout < 2 * heartbeatInterval) {
    throw new RangeError(
      `config.electionTimeout (${electionTimeout} ms) must be at least twice config.heartbeatInterval (${heartbeatInterval} ms)`,
    );
  }
  const leaderLeaseTimeout = config.leaderLeaseTimeout ??
    Math.floor(electionTimeout * LEASE_FRACTION);
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
    preVote: config.preVote ?? DEFAULT_CONFIG.preVote,
    checkQuorum: config.checkQuorum ?? DEFAULT_CONFIG.checkQuorum,
    maxAppendEntries: config.maxAppendEntries ?? DEFAULT_CONFIG.maxAppendEntries,
    maxAppendBytes: config.maxAppendBytes ?? DEFAULT_CONFIG.maxAppendBytes,
    maxInflightAppends: config.maxInflightAppends ?? DEFAULT_CONFIG.maxInflightAppends,
    snapshotThreshold: config.snapshotThreshold ?? DEFAULT_CONFIG.snapshotThreshold,
    snapshotInterval: config.snapshotInterval ?? DEFAULT_CONFIG.snapshotInterval,
    trailingLogs: config.trailingLogs ?? DEFAULT_CONFIG.trailingLogs,
    retainSnapshots: config.retainSnapshots ?? DEFAULT_CONFIG.retainSnapshots,
    autoPromoteNonvoters: config.autoPromoteNonvoters ?? DEFAULT_CONFIG.autoPromoteNonvoters,
    shutdownOnRemove: config.shutdownOnRemove ?? DEFAULT_CONFIG.shutdownOnRemove,
    catchupMargin: config.catchupMargin ?? DEFAULT_CONFIG.catchupMargin,
    storageTimeout: config.storageTimeout ?? DEFAULT_CONFIG.storageTimeout,
    maxApplyBatch: config.maxApplyBatch ?? DEFAULT_CONFIG.maxApplyBatch,
    logCacheBytes: config.logCacheBytes ?? DEFAULT_CONFIG.logCacheBytes,
    random: config.random ?? Math.random,
    logger: config.logger ?? getLogger(["raftd", "raft"]),
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
  nonNegativeInteger("logCacheBytes", resolved.logCacheBytes);
  for (
    const flag of ["preVote", "checkQuorum", "autoPromoteNonvoters", "shutdownOnRemove"] as const
  ) {
    if (typeof resolved[flag] !== "boolean") {
      throw new TypeError(`config.${flag} must be a boolean, got ${describeValue(resolved[flag])}`);
    }
  }
  if (typeof resolved.random !== "function") {
    throw new TypeError(`config.random must be a function, got ${describeValue(resolved.random)}`);
  }
  const logger = resolved.logger as unknown as Record<string, unknown> | null;
  const missing = typeof logger === "object" && logger !== null
    ? LOGGER_METHODS.filter((m) => typeof logger[m] !== "function")
    : LOGGER_METHODS;
  if (missing.length > 0) {
    throw new TypeError(
      `config.logger must have the methods ${LOGGER_METHODS.join(", ")}, got ${
        describeValue(resolved.logger)
      }${typeof logger === "object" && logger !== null ? ` without ${missing.join(", ")}` : ""}`,
    );
  }
  return resolved;
}

/** The fields of `config` that are set: an explicit `undefined` means "the default". */
function withoutUndefined(config: Config): Partial<Config> {
  return Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
}

/** The keys {@linkcode resolveReload} accepts. */
const RELOADABLE_KEYS: readonly (keyof ReloadableConfig)[] = [
  "heartbeatInterval",
  "electionTimeout",
  "leaderLeaseTimeout",
  "snapshotThreshold",
  "snapshotInterval",
  "trailingLogs",
  "autoPromoteNonvoters",
];

/**
 * The configuration after a run-time change: `current` with `changes`
 * applied and checked like {@linkcode validateConfig} checks a new one.
 * Refuses keys a running node cannot change (`preVote`, `id`, …) instead of
 * ignoring them.
 *
 * @throws {TypeError} when `changes` is not an object or names a key that
 * cannot change at run time (the message lists those that can).
 * @throws {RangeError} when a changed value is out of range (see {@linkcode validateConfig}).
 *
 * @example
 * ```ts
 * import { resolveReload, validateConfig } from "./config.ts";
 * const current = validateConfig({ id: "n1" });
 * console.log(resolveReload(current, { snapshotThreshold: 100 }).snapshotThreshold); // 100
 * try {
 *   resolveReload(current, { preVote: false } as never);
 * } catch (e) {
 *   console.log((e as TypeError).message);
 * }
 * ```
 */
export function resolveReload(current: ResolvedConfig, changes: ReloadableConfig): ResolvedConfig {
  if (changes === null || typeof changes !== "object") {
    throw new TypeError(`reloadConfig: changes must be an object, got ${describeValue(changes)}`);
  }
  for (const key of Object.keys(changes)) {
    if (!(RELOADABLE_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(
        `reloadConfig: ${JSON.stringify(key)} cannot change while the node runs; ` +
          `expected one of ${RELOADABLE_KEYS.join(", ")}`,
      );
    }
  }
  return validateConfig({ ...current, ...withoutUndefined(changes as Config) });
}
