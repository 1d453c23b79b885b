/**
 * Storage for Raft: the interfaces, durable file implementations (segmented
 * log, hard state file, snapshot directories) and in-memory ones for tests.
 *
 * @example Opening the file stores of a node
 * ```ts
 * import { FileLogStore, FileSnapshotStore, FileStableStore } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const logStore = await FileLogStore.open(`${dir}/log`);
 * const stableStore = await FileStableStore.open(`${dir}/stable`);
 * const snapshotStore = await FileSnapshotStore.open(`${dir}/snapshots`);
 * console.log(await logStore.lastIndex(), await stableStore.getState()); // 0 undefined
 * await logStore.close();
 * await stableStore.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export type {
  LogStore,
  SnapshotInfo,
  SnapshotSink,
  SnapshotSource,
  SnapshotStore,
  StableStore,
} from "./types.ts";
export {
  FileLogStore,
  type FileLogStoreOptions,
  type FileLogStoreStats,
} from "./file_log_store.ts";
export { FileStableStore, type FileStableStoreOptions } from "./file_stable_store.ts";
export {
  FileSnapshotStore,
  type FileSnapshotStoreOptions,
  openLatestValid,
  type VerifiableSnapshotStore,
} from "./file_snapshot_store.ts";
export { MemoryLogStore } from "./memory_log_store.ts";
export { MemoryStableStore } from "./memory_stable_store.ts";
export { MemorySnapshotStore, type MemorySnapshotStoreOptions } from "./memory_snapshot_store.ts";
export { compareSnapshots } from "./snapshot_order.ts";
// The file stores take an optional `fs` (e.g. to count syncs or inject faults in tests).
export type { DirEntry, FileHandle, FileInfo, FileSystem, OpenOptions } from "../platform/fs.ts";
