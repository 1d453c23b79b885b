/**
 * Typed errors. Every failure a user can act on has its own class so callers
 * can `instanceof` it; messages say what was expected and what was found.
 *
 * @module
 */

import type { ServerAddress, ServerId } from "./core/types.ts";

/**
 * Base class of all raftd errors.
 *
 * @example
 * ```ts
 * import { RaftError, NotLeaderError } from "./errors.ts";
 * const e = new NotLeaderError(undefined);
 * console.log(e instanceof RaftError); // true
 * console.log(new RaftError("something failed").name); // "RaftError"
 * ```
 */
export class RaftError extends Error {
  /** Always `"RaftError"`, also in bundled or minified code. */
  override name: string = "RaftError";
  /** Creates the error with a message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The leader as far as a node knows it. */
export interface LeaderInfo {
  /** Leader's server id. */
  id: ServerId;
  /** Leader's transport address. */
  address: ServerAddress;
}

/**
 * The operation needs the leader and this node is not it. `leader` names the
 * leader this node knows of, if any, so a client can retry there.
 *
 * @example
 * ```ts
 * import { NotLeaderError } from "./errors.ts";
 * const e = new NotLeaderError({ id: "n2", address: "127.0.0.1:7002" });
 * console.log(e.leader?.id); // "n2"
 * ```
 */
export class NotLeaderError extends RaftError {
  /** Always `"NotLeaderError"`, also in bundled or minified code. */
  override name: string = "NotLeaderError";
  /** The known leader, or undefined when none is known. */
  readonly leader: LeaderInfo | undefined;
  /** Creates the error naming the known leader. */
  constructor(leader: LeaderInfo | undefined, message?: string) {
    super(
      message ??
        (leader
          ? `not the leader: the leader is ${leader.id} at ${leader.address}`
          : "not the leader: no leader is known right now"),
    );
    this.leader = leader;
  }
}

/**
 * Whether an entry whose leader lost leadership got committed anyway.
 * `unknown` means it may still be committed by the next leader.
 */
export type CommitOutcome = "committed" | "not_committed" | "unknown";

/**
 * Leadership was lost while an operation was in flight: another server took
 * over, or this one stopped (a disk failure; the `cause` says which).
 *
 * `outcome` makes the ambiguity explicit: `"not_committed"` means the entry
 * was never appended or was overwritten; `"unknown"` means a new leader may
 * still commit it (the client must check before retrying a non-idempotent
 * write); `"committed"` means it is committed, though this node may never
 * apply it.
 *
 * @example
 * ```ts
 * import { LeadershipLostError } from "./errors.ts";
 * const e = new LeadershipLostError("unknown");
 * console.log(e.outcome); // "unknown"
 * ```
 */
export class LeadershipLostError extends RaftError {
  /** Always `"LeadershipLostError"`, also in bundled or minified code. */
  override name: string = "LeadershipLostError";
  /** What is known of the entry's fate. */
  readonly outcome: CommitOutcome;
  /** Creates the error with the entry's known fate. */
  constructor(outcome: CommitOutcome, message?: string, options?: ErrorOptions) {
    super(
      message ?? `leadership lost while the operation was in flight (outcome: ${outcome})`,
      options,
    );
    this.outcome = outcome;
  }
}

/**
 * The operation did not finish within its timeout. For writes `outcome`
 * tells whether the entry may still commit.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "./errors.ts";
 * const e = new TimeoutError("apply", 500, "unknown");
 * console.log(e.message);
 * ```
 */
export class TimeoutError extends RaftError {
  /** Always `"TimeoutError"`, also in bundled or minified code. */
  override name: string = "TimeoutError";
  /** What is known of the entry's fate (always "not_committed" for reads). */
  readonly outcome: CommitOutcome;
  /** Creates the error naming the operation and the timeout in ms. */
  constructor(operation: string, timeoutMs: number, outcome: CommitOutcome = "unknown") {
    super(`${operation} timed out after ${timeoutMs} ms (outcome: ${outcome})`);
    this.outcome = outcome;
  }
}

/**
 * The caller's AbortSignal fired before the operation finished.
 *
 * @example
 * ```ts
 * import { AbortError } from "./errors.ts";
 * console.log(new AbortError("apply").message);
 * ```
 */
export class AbortError extends RaftError {
  /** Always `"AbortError"`, also in bundled or minified code. */
  override name: string = "AbortError";
  /** What is known of the entry's fate. */
  readonly outcome: CommitOutcome;
  /** Creates the error naming the aborted operation. */
  constructor(operation: string, outcome: CommitOutcome = "unknown", options?: ErrorOptions) {
    super(`${operation} aborted (outcome: ${outcome})`, options);
    this.outcome = outcome;
  }
}

/**
 * The node is shut down (or shutting down) and cannot serve the request.
 *
 * @example
 * ```ts
 * import { ShutdownError } from "./errors.ts";
 * console.log(new ShutdownError().message);
 * ```
 */
export class ShutdownError extends RaftError {
  /** Always `"ShutdownError"`, also in bundled or minified code. */
  override name: string = "ShutdownError";
  /** Creates the error. */
  constructor(message = "raft is shut down") {
    super(message);
  }
}

/**
 * A membership change was refused: another change is in flight, `prevIndex`
 * does not match, the server is unknown, or the change would leave no voter.
 *
 * @example
 * ```ts
 * import { ConfigurationError } from "./errors.ts";
 * console.log(new ConfigurationError("server n9 is not in the configuration").message);
 * ```
 */
export class ConfigurationError extends RaftError {
  /** Always `"ConfigurationError"`, also in bundled or minified code. */
  override name: string = "ConfigurationError";
}

/**
 * Stored data failed its checksum or structure check. `file` and `offset`
 * say where, when known.
 *
 * @example
 * ```ts
 * import { CorruptionError } from "./errors.ts";
 * const e = new CorruptionError("bad checksum", { file: "00000001.seg", offset: 4096 });
 * console.log(e.file, e.offset);
 * ```
 */
export class CorruptionError extends RaftError {
  /** Always `"CorruptionError"`, also in bundled or minified code. */
  override name: string = "CorruptionError";
  /** File in which the corruption was found, if known. */
  readonly file: string | undefined;
  /** Byte offset in that file, if known. */
  readonly offset: number | undefined;
  /** Creates the error with the location of the corruption. */
  constructor(message: string, where: { file?: string; offset?: number } = {}) {
    const loc = where.file !== undefined
      ? ` (file ${where.file}${where.offset !== undefined ? ` at offset ${where.offset}` : ""})`
      : "";
    super(message + loc);
    this.file = where.file;
    this.offset = where.offset;
  }
}

/**
 * A storage operation (disk write, fsync) failed. The node stops
 * acknowledging writes and steps down rather than risk losing data.
 *
 * @example
 * ```ts
 * import { StorageError } from "./errors.ts";
 * console.log(new StorageError("fsync failed").message);
 * ```
 */
export class StorageError extends RaftError {
  /** Always `"StorageError"`, also in bundled or minified code. */
  override name: string = "StorageError";
}

/**
 * A leadership transfer failed: the target is unknown, not a voter, or did
 * not take over in time.
 *
 * @example
 * ```ts
 * import { LeadershipTransferError } from "./errors.ts";
 * console.log(new LeadershipTransferError("no voter to transfer to").message);
 * ```
 */
export class LeadershipTransferError extends RaftError {
  /** Always `"LeadershipTransferError"`, also in bundled or minified code. */
  override name: string = "LeadershipTransferError";
}

/**
 * An operation is not possible in the node's current condition, e.g.
 * bootstrapping a node that already has state, or a snapshot with nothing new.
 *
 * @example
 * ```ts
 * import { InvalidStateError } from "./errors.ts";
 * console.log(new InvalidStateError("cluster already bootstrapped").message);
 * ```
 */
export class InvalidStateError extends RaftError {
  /** Always `"InvalidStateError"`, also in bundled or minified code. */
  override name: string = "InvalidStateError";
}
