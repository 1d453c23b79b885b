/**
 * Helpers for testing code built on raftd, as hashicorp/raft ships its
 * in-memory transport: {@linkcode MemoryNetwork} (transports that deliver in
 * memory, with loss, delay, duplication, reordering and partitions), memory
 * log, stable and snapshot stores, {@linkcode formCluster}, which forms an
 * n-node cluster of real `Raft` nodes in one call, and {@linkcode RecordingFSM},
 * a state machine that keeps every command it applied.
 *
 * @example A three-node cluster, a partition, a new leader
 * ```ts
 * import { formCluster, type RecordingFSM } from "./testing.ts";
 *
 * await using cluster = await formCluster(); // three voters, each with a RecordingFSM
 * const old = cluster.leader()!;
 * cluster.network.isolate(old.id);
 * await cluster.waitFor("a leader in a newer term", () =>
 *   cluster.leader()!.currentTerm > old.currentTerm);
 * const { index } = await cluster.leader()!.apply(new TextEncoder().encode("after"));
 * cluster.network.heal();
 * await cluster.waitFor("every node to apply it", () =>
 *   cluster.nodes.every((n) => n.raft.appliedIndex >= index));
 * console.log((cluster.node(old.id).fsm as RecordingFSM).texts()); // ["after"]
 * ```
 *
 * @module
 */

export { RecordingFSM } from "./src/testing/recording_fsm.ts";
export {
  formCluster,
  TestCluster,
  type TestClusterNode,
  type TestClusterOptions,
  type TestClusterWaitOptions,
} from "./src/testing/test_cluster.ts";
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryNetworkStats,
  type MemoryTimers,
  MemoryTransport,
} from "./src/transport/memory_transport.ts";
export { MemoryLogStore } from "./src/storage/memory_log_store.ts";
export { MemoryStableStore } from "./src/storage/memory_stable_store.ts";
export {
  MemorySnapshotStore,
  type MemorySnapshotStoreOptions,
} from "./src/storage/memory_snapshot_store.ts";
