/**
 * Data types shared by the pure Raft core, the driver, storage and transport.
 *
 * Everything here is plain data: no classes with behaviour, so values cross
 * the wire (MessagePack) and the disk unchanged.
 *
 * @module
 */

/** A server's identity in the cluster; stable across restarts and address changes. */
export type ServerId = string;

/** A transport address, for the TCP transport `host:port`. */
export type ServerAddress = string;

/**
 * The kind of a log entry.
 *
 * - `Normal`: user data handed to the FSM.
 * - `Noop`: appended by a new leader and by {@linkcode Raft.barrier}; never reaches the FSM.
 * - `Configuration`: a membership change; `data` is an encoded {@linkcode Configuration}.
 * - `Restore`: a piece of an operator's restore (`Raft.restore`); the state
 *   machine's state is replaced when the last piece of a run is applied.
 *
 * @example Checking an entry's type
 * ```ts
 * import { EntryType } from "./types.ts";
 * const entry = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array() };
 * console.log(entry.type === EntryType.Normal); // true
 * ```
 */
export const EntryType = {
  Normal: 0,
  Noop: 1,
  Configuration: 2,
  Restore: 3,
} as const;

/** One of the {@linkcode EntryType} values. */
export type EntryType = typeof EntryType[keyof typeof EntryType];

/**
 * One record of the replicated log.
 *
 * @example
 * ```ts
 * import { type Entry, EntryType } from "./types.ts";
 * const e: Entry = { index: 7, term: 2, type: EntryType.Normal, data: new TextEncoder().encode("x") };
 * ```
 */
export interface Entry {
  /** Position in the log, starting at 1. */
  index: number;
  /** Term of the leader that created the entry. */
  term: number;
  /** What the entry carries. */
  type: EntryType;
  /** Payload; for `Normal` entries exactly the bytes given to `apply()`. */
  data: Uint8Array;
}

/**
 * A server's voting rights.
 *
 * - `voter`: counts towards quorum and may become leader.
 * - `nonvoter`: receives the log, never votes nor counts.
 * - `staging`: a future voter catching up; promoted to voter by the leader once caught up.
 */
export type Suffrage = "voter" | "nonvoter" | "staging";

/**
 * One member of a cluster configuration.
 *
 * @example
 * ```ts
 * import type { Server } from "./types.ts";
 * const s: Server = { id: "n1", address: "127.0.0.1:7001", suffrage: "voter" };
 * ```
 */
export interface Server {
  /** Stable identity. */
  id: ServerId;
  /** Where the transport reaches it. */
  address: ServerAddress;
  /** Voting rights. */
  suffrage: Suffrage;
}

/**
 * The cluster membership: the servers and their suffrage.
 *
 * @example
 * ```ts
 * import type { Configuration } from "./types.ts";
 * const c: Configuration = { servers: [{ id: "n1", address: "127.0.0.1:7001", suffrage: "voter" }] };
 * ```
 */
export interface Configuration {
  /** Members, each id at most once. */
  servers: Server[];
}

/**
 * State that must be durable before a node answers anyone: its term, its vote
 * in that term, and the last commit index it knew (so a restart can apply at once).
 *
 * @example
 * ```ts
 * import type { HardState } from "./types.ts";
 * const hs: HardState = { term: 3, vote: "n2", commit: 41 };
 * ```
 */
export interface HardState {
  /** Latest term this server has seen. */
  term: number;
  /** Candidate this server voted for in `term`, or `""` for none. */
  vote: ServerId;
  /** Highest log index known to be committed (a hint: never more than what is on disk is applied). */
  commit: number;
}

/**
 * What a snapshot covers: the last entry it includes and the membership at that point.
 *
 * @example
 * ```ts
 * import type { SnapshotMeta } from "./types.ts";
 * const m: SnapshotMeta = {
 *   index: 100, term: 3,
 *   configuration: { servers: [] }, configurationIndex: 1,
 * };
 * ```
 */
export interface SnapshotMeta {
  /** Index of the last entry included in the snapshot. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Membership as of `index`. */
  configuration: Configuration;
  /** Index of the entry that set `configuration`. */
  configurationIndex: number;
}

/** Ask a server for its (pre-)vote. */
export interface VoteRequest {
  /** Discriminates the {@linkcode Message} union. */
  type: "vote";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** Index of the candidate's last log entry. */
  lastLogIndex: number;
  /** Term of the candidate's last log entry. */
  lastLogTerm: number;
  /** A pre-vote asks "would you vote for me?" without changing anyone's term. */
  preVote: boolean;
  /** Set by a leadership transfer: voters ignore their leader stickiness. */
  leadershipTransfer: boolean;
}

/** Answer to a {@linkcode VoteRequest}. */
export interface VoteResponse {
  /** Discriminates the {@linkcode Message} union. */
  type: "vote_resp";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** Whether the vote (or pre-vote) was granted. */
  granted: boolean;
  /** Answers a pre-vote. */
  preVote: boolean;
}

/** Replicate entries (possibly none) after `prevIndex`. */
export interface AppendRequest {
  /** Discriminates the {@linkcode Message} union. */
  type: "append";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** Index of the entry just before `entries`. */
  prevIndex: number;
  /** Term of the entry at `prevIndex`. */
  prevTerm: number;
  /** Entries to append after `prevIndex`; empty when only probing. */
  entries: Entry[];
  /** Leader's commit index. */
  commit: number;
}

/** Answer to an {@linkcode AppendRequest} or {@linkcode InstallSnapshotRequest}. */
export interface AppendResponse {
  /** Discriminates the {@linkcode Message} union. */
  type: "append_resp";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** Whether the entries were appended (or the snapshot installed). */
  success: boolean;
  /** On success the follower's matching last index; on rejection the rejected `prevIndex`. */
  index: number;
  /** On rejection: the follower's hint for where to retry (fast backtracking). */
  hintIndex: number;
  /** On rejection: term of the follower's entry at `hintIndex` (0 if none). */
  hintTerm: number;
}

/** Leader's liveness signal; also confirms leadership for ReadIndex via `context`. */
export interface HeartbeatRequest {
  /** Discriminates the {@linkcode Message} union. */
  type: "heartbeat";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** min(follower match, leader commit): never asks a follower to commit what it may not have. */
  commit: number;
  /** Highest pending ReadIndex round, echoed back. */
  context: number;
}

/** Answer to a {@linkcode HeartbeatRequest}. */
export interface HeartbeatResponse {
  /** Discriminates the {@linkcode Message} union. */
  type: "heartbeat_resp";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** The heartbeat's `context`, echoed. */
  context: number;
}

/**
 * Install the leader's snapshot. The snapshot data travels beside the
 * message (streamed by the transport); the core only sees the metadata.
 */
export interface InstallSnapshotRequest {
  /** Discriminates the {@linkcode Message} union. */
  type: "snapshot";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
  /** What the snapshot covers. */
  meta: SnapshotMeta;
}

/** Leadership transfer: the target starts an election at once. */
export interface TimeoutNowRequest {
  /** Discriminates the {@linkcode Message} union. */
  type: "timeout_now";
  /** Sender's current term. */
  term: number;
  /** Sender's server id. */
  from: ServerId;
  /** Receiver's server id. */
  to: ServerId;
}

/**
 * Every message of the protocol.
 *
 * @example Narrowing on the type
 * ```ts
 * import type { Message } from "./types.ts";
 * function describe(m: Message): string {
 *   return m.type === "append" ? `${m.entries.length} entries` : m.type;
 * }
 * ```
 */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | InstallSnapshotRequest
  | TimeoutNowRequest;

/** The role of a node. */
export type RaftState = "follower" | "candidate" | "leader" | "shutdown";

/**
 * A linearizable read point released by the core: once the applied index
 * reaches `index`, reads for request `id` may be served.
 */
export interface ReadState {
  /** Request id given to `readIndex()`. */
  id: number;
  /** Commit index at the time leadership was confirmed. */
  index: number;
  /**
   * Present when the read was answered from the leader lease: the heartbeat
   * round (a message's `context`) whose acknowledgement by a quorum the lease
   * rests on. The core counts time in ticks, which stop while the process is
   * stopped; the driver must check, when it serves the read, that the lease
   * still holds on its monotonic clock from when that round was sent, and ask
   * for a ReadIndex instead when it does not.
   */
  leaseRound?: number;
}
