/**
 * The types of the public node API: options of operations, what they
 * resolve with, observations and statistics. Exported by `src/raft.ts`.
 *
 * @module
 */

import type { Configuration, RaftState, ServerAddress, ServerId } from "../core/types.ts";
import type { LeaderInfo } from "../errors.ts";
import type { Histogram } from "../metrics.ts";
import type { Clock } from "../platform/clock.ts";
import type { LogStore, SnapshotStore, StableStore } from "../storage/types.ts";
import type { Transport } from "../transport/types.ts";

/** The stores and transport a node runs on. */
export interface RaftStores {
  /** Where the log lives. */
  logStore: LogStore;
  /** Where term, vote and the commit hint live. */
  stableStore: StableStore;
  /** Where snapshots live. */
  snapshotStore: SnapshotStore;
  /** How messages reach other servers. */
  transport: Transport;
  /**
   * Where time and scheduling come from: timers, deadlines, leases and the
   * Ready loop's macrotasks. Default: a `RealClock` the node creates
   * and closes on `shutdown()`. A clock passed here (e.g. a simulation's
   * virtual clock) is not closed by the node.
   */
  clock?: Clock;
}

/**
 * Options of `Raft.create`.
 *
 * @example Every server of a new three-node cluster, on every start
 * ```ts
 * import type { CreateOptions } from "./types.ts";
 * const options: CreateOptions = {
 *   bootstrap: {
 *     servers: ["n1", "n2", "n3"].map((id) => ({ id, address: id, suffrage: "voter" })),
 *   },
 * };
 * console.log(options.bootstrap?.servers.length); // 3
 * ```
 */
export interface CreateOptions {
  /**
   * The first configuration of a new cluster (etcd's `StartNode` peers),
   * written before the node hears from any peer, and on disk when `create`
   * resolves. Used only when the stores hold no state (see
   * `Raft.hasExistingState`); a server with state starts as it is. So it is
   * safe to pass on every start, and a server whose first start died before
   * the configuration was on disk bootstraps again. Prefer this to
   * `bootstrapCluster` when several servers bootstrap: a peer's vote request
   * can reach a node between `create` and `bootstrapCluster`, and a node
   * that has taken a term refuses to bootstrap. Every server bootstrapped
   * this way must be given the same configuration.
   */
  bootstrap?: Configuration;
}

/** Options of operations that wait for the cluster. */
export interface OperationOptions {
  /** Give up after this many ms; covers the whole commit, not only the enqueue. */
  timeout?: number;
  /** Give up when this signal aborts. */
  signal?: AbortSignal;
}

/** Options of membership changes. */
export interface MembershipOptions extends OperationOptions {
  /** Only change if the latest configuration's index is still this (0 = any). */
  prevIndex?: number;
}

/** Options of `addVoter` and `addNonvoter`. */
export interface AddServerOptions extends MembershipOptions {
  /**
   * Allow moving a server that is already a member to another address.
   * Without it such a call is refused: a typo, or a second machine reusing
   * an id, would otherwise cut the member off.
   */
  updateAddress?: boolean;
}

/** Options of reads. */
export interface ReadOptions extends OperationOptions {
  /** Serve from the leader lease when it is valid (no round trip); falls back to ReadIndex. */
  lease?: boolean;
}

/** What `apply()` resolves with. */
export interface ApplyResult<R> {
  /** Log index of the entry. */
  index: number;
  /** Term of the entry. */
  term: number;
  /** What the FSM's `apply` returned. */
  response: R;
}

/** What index-only operations resolve with. */
export interface IndexResult {
  /** Log index at which the operation took effect. */
  index: number;
}

/** Something that happened to the node, for {@linkcode Raft.observe}. */
export type Observation =
  | { type: "state"; state: RaftState; term: number }
  | { type: "leader"; leader: LeaderInfo | undefined; term: number }
  | {
    type: "peer";
    id: ServerId;
    address: ServerAddress;
    change: "added" | "removed" | "promoted" | "demoted";
  }
  | { type: "heartbeat_failed"; id: ServerId; lastContact: number }
  /** This server applied a configuration that no longer lists it (at `index`). */
  | { type: "removed"; index: number }
  | { type: "snapshot"; index: number; term: number; size: number };

/** Counters and gauges of a node, see {@linkcode Raft.stats}. */
export interface RaftStats {
  /** Server id. */
  id: string;
  /** Role. */
  state: RaftState;
  /** Current term. */
  term: number;
  /** Known leader, if any. */
  leaderId: string | undefined;
  /** Last log index. */
  lastLogIndex: number;
  /** Term of the last entry. */
  lastLogTerm: number;
  /** Commit index. */
  commitIndex: number;
  /** Index applied to the FSM. */
  appliedIndex: number;
  /** Index of the newest snapshot. */
  lastSnapshotIndex: number;
  /** Term of the newest snapshot. */
  lastSnapshotTerm: number;
  /** Size in bytes of the newest snapshot taken or installed here. */
  lastSnapshotSize: number;
  /** ms since the leader was last heard from (0 on the leader). */
  lastContactMs: number | undefined;
  /** Other servers in the configuration. */
  numPeers: number;
  /** Index of the latest configuration. */
  configurationIndex: number;
  /** Log writes (each one fsync). */
  fsyncs: number;
  /** Log append + fsync latency. */
  storeLogsSeconds: Histogram;
  /** FSM apply batch latency. */
  applySeconds: Histogram;
  /** `apply()` call to resolve latency on the leader. */
  commitSeconds: Histogram;
  /** Messages sent by type. */
  messagesSent: Record<string, number>;
  /** Messages received by type. */
  messagesReceived: Record<string, number>;
  /** Snapshots taken here. */
  snapshotsTaken: number;
  /** Snapshots installed from a leader. */
  snapshotsInstalled: number;
  /** Log entries held in memory (not yet durable, or in the log cache). */
  logEntriesInMemory: number;
  /** Their bytes as the log cache counts them (data plus a fixed overhead each). */
  logBytesInMemory: number;
  /** Reads of older log entries from the log store (for lagging followers or the FSM). */
  logReads: number;
  /** Entries those reads returned. */
  logEntriesRead: number;
}
