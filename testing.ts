/**
 * Helpers for testing code built on raftd, as hashicorp/raft ships its
 * in-memory transport: {@linkcode MemoryNetwork} (transports that deliver in
 * memory, with loss, delay, duplication, reordering and partitions), memory
 * log, stable and snapshot stores, and {@linkcode formCluster}, which forms an
 * n-node cluster of real `Raft` nodes in one call.
 *
 * @example A three-node cluster, a partition, a new leader
 * ```ts
 * import { formCluster } from "./testing.ts";
 * import type { FSMEntry } from "./mod.ts";
 *
 * class Count {
 *   n = 0;
 *   apply(_e: FSMEntry) { return ++this.n; }
 *   snapshot() { return { persist: async () => {}, release() {} }; }
 *   async restore() {}
 * }
 * await using cluster = await formCluster({ fsm: () => new Count() });
 * const old = cluster.leader()!;
 * cluster.network.isolate(old.id);
 * await cluster.waitFor("a leader in a newer term", () =>
 *   cluster.leader()!.currentTerm > old.currentTerm);
 * const { response } = await cluster.leader()!.apply(new Uint8Array([1]));
 * console.log(response); // 1
 * ```
 *
 * @module
 */

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
