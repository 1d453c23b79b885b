/**
 * raftd: the Raft consensus protocol for TypeScript.
 *
 * This module (`@raftd/raftd`) is the library. Two more entry points:
 * `@raftd/raftd/testing` (an in-memory network with fault injection, memory
 * stores and `formCluster`, for your own tests) and `@raftd/raftd/cli` (the `raftd` command:
 * `deno run -A jsr:@raftd/raftd/cli serve …`).
 *
 * A {@linkcode Raft} node replicates a log of commands to a cluster of
 * servers and applies them, in the same order on every server, to your
 * state machine ({@linkcode FSM}). It is modelled on hashicorp/raft's API and
 * etcd's raft core: leader election with pre-vote and check-quorum, pipelined
 * replication with group commit, snapshots and InstallSnapshot, membership
 * changes (voters, non-voters, staging, demote, remove), leadership transfer,
 * barriers, ReadIndex and lease reads, observers and operator recovery.
 *
 * Storage and transport are pluggable: {@linkcode FileLogStore},
 * {@linkcode FileStableStore} and {@linkcode FileSnapshotStore} keep state
 * on disk; {@linkcode TcpTransport} talks to other servers; the memory
 * versions (in `@raftd/raftd/testing`) serve tests.
 *
 * The library is silent by default. It logs through LogTape under the
 * category `"raftd"`; {@linkcode Logger} shows the one call that routes it
 * to the console.
 *
 * @example A three-node cluster in one process (memory stores and network)
 * ```ts
 * import { type FSMEntry, Raft } from "./mod.ts";
 * import {
 *   MemoryLogStore, MemoryNetwork, MemorySnapshotStore, MemoryStableStore,
 * } from "./testing.ts";
 *
 * class Log {
 *   lines: string[] = [];
 *   apply(e: FSMEntry) { return this.lines.push(new TextDecoder().decode(e.data)); }
 *   snapshot() {
 *     const text = JSON.stringify(this.lines);
 *     return { persist: async (sink: { write(c: Uint8Array): Promise<void> }) => {
 *       await sink.write(new TextEncoder().encode(text));
 *     }, release() {} };
 *   }
 *   async restore(data: AsyncIterable<Uint8Array>) {
 *     let text = "";
 *     for await (const c of data) text += new TextDecoder().decode(c);
 *     this.lines = JSON.parse(text);
 *   }
 * }
 *
 * const network = new MemoryNetwork();
 * const ids = ["n1", "n2", "n3"];
 * const nodes = await Promise.all(ids.map((id) =>
 *   Raft.create({ id, heartbeatInterval: 20, electionTimeout: 200 }, new Log(), {
 *     logStore: new MemoryLogStore(),
 *     stableStore: new MemoryStableStore(),
 *     snapshotStore: new MemorySnapshotStore(),
 *     transport: network.transport(id),
 *   })
 * ));
 * await nodes[0].bootstrapCluster({
 *   servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
 * });
 * let leader;
 * while (!(leader = nodes.find((n) => n.state === "leader"))) {
 *   await new Promise((r) => setTimeout(r, 10));
 * }
 * const { index, response } = await leader.apply(new TextEncoder().encode("hello"));
 * console.log(index, response);
 * await Promise.all(nodes.map((n) => n.shutdown()));
 * ```
 *
 * @module
 */

export {
  type AddServerOptions,
  type ApplyResult,
  type CreateOptions,
  type IndexResult,
  type MembershipOptions,
  type Observation,
  type OperationOptions,
  Raft,
  type RaftStats,
  type RaftStores,
  type ReadOptions,
} from "./src/raft.ts";
export {
  type Config,
  DEFAULT_CONFIG,
  type ReloadableConfig,
  type ResolvedConfig,
  validateConfig,
} from "./src/config.ts";
export type { FSM, FSMEntry, FSMSnapshot } from "./src/fsm.ts";
export type { Logger } from "./src/logger.ts";
export {
  AbortError,
  type CommitOutcome,
  ConfigurationError,
  CorruptionError,
  InvalidStateError,
  type LeaderInfo,
  LeadershipLostError,
  LeadershipTransferError,
  NotLeaderError,
  RaftError,
  ShutdownError,
  StorageError,
  TimeoutError,
} from "./src/errors.ts";
export {
  type AppendRequest,
  type AppendResponse,
  type Configuration,
  type Entry,
  EntryType,
  type HardState,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type InstallSnapshotRequest,
  type Message,
  type RaftState,
  type Server,
  type ServerAddress,
  type ServerId,
  type SnapshotMeta,
  type Suffrage,
  type TimeoutNowRequest,
  type VoteRequest,
  type VoteResponse,
} from "./src/core/types.ts";
export type { Histogram } from "./src/metrics.ts";
// A node may run on an injected clock (RaftStores.clock), e.g. a test's virtual one.
export type { Clock, TimerHandle } from "./src/platform/clock.ts";
export type {
  LogStore,
  SnapshotInfo,
  SnapshotSink,
  SnapshotSource,
  SnapshotStore,
  StableStore,
} from "./src/storage/types.ts";
export {
  FileLogStore,
  type FileLogStoreOptions,
  type FileLogStoreStats,
} from "./src/storage/file_log_store.ts";
export { FileStableStore, type FileStableStoreOptions } from "./src/storage/file_stable_store.ts";
export {
  FileSnapshotStore,
  type FileSnapshotStoreOptions,
  openLatestValid,
  type VerifiableSnapshotStore,
} from "./src/storage/file_snapshot_store.ts";
// The file stores take an optional `fs` (to count syncs or inject faults in tests).
export {
  defaultFileSystem,
  type DirEntry,
  type FileHandle,
  type FileInfo,
  type FileSystem,
  type OpenOptions,
} from "./src/platform/fs.ts";
export type { Transport, TransportHandler } from "./src/transport/types.ts";
export {
  type TcpPeerStats,
  TcpTransport,
  type TcpTransportOptions,
  type TcpTransportStats,
  type TcpTransportTlsOptions,
} from "./src/transport/tcp_transport.ts";
export { type ClusterMembership, isClusterId, newClusterId } from "./src/transport/cluster_id.ts";
// A custom transport can carry messages in the same validated encoding as the TCP one.
export { decodeMessage, encodeMessage } from "./src/transport/codec.ts";
export {
  FrameTooLargeError,
  ProtocolError,
  SnapshotRejectedError,
  TransportError,
} from "./src/transport/errors.ts";
