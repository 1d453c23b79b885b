/**
 * Starting from what the stores hold, and operator recovery: restore the
 * newest snapshot that verifies, load the log that continues it, and
 * hashicorp's `RecoverCluster` (rewrite a stopped node's configuration after
 * quorum loss).
 *
 * @module
 */

import type { ResolvedConfig } from "../config.ts";
import { checkConfiguration, checkStartingConfiguration } from "../core/membership.ts";
import { type StoredLog, StoredLogBuilder } from "../core/stored_log.ts";
import { type Configuration, EntryType, type HardState, type SnapshotMeta } from "../core/types.ts";
import { ConfigurationError, CorruptionError, InvalidStateError } from "../errors.ts";
import type { FSM } from "../fsm.ts";
import type { Logger } from "../logger.ts";
import { getLogsWithin } from "../storage/read_budget.ts";
import type { LogStore, SnapshotSource, SnapshotStore, StableStore } from "../storage/types.ts";
import { persistPrepared } from "./snapshots.ts";
import { RestoreAssembler } from "./restore_chunks.ts";

/** The stores a node keeps its state in. */
export interface StateStores {
  /** The log. */
  logStore: LogStore;
  /** Term, vote, commit hint. */
  stableStore: StableStore;
  /** Snapshots. */
  snapshotStore: SnapshotStore;
}

/** What a node starts from. */
export interface StoredState {
  /** Term, vote and commit hint, if any were stored. */
  hardState: HardState | undefined;
  /** The snapshot the FSM was restored from, and its size. */
  snapshot: { meta: SnapshotMeta; size: number } | undefined;
  /** The stored log after the snapshot (or from the first), summarized: terms, configurations, newest entries. */
  log: StoredLog;
  /** Index of the last stored entry (0: none). */
  lastIndex: number;
}

/**
 * Whether the stores hold any Raft state (a term, a log or a snapshot).
 *
 * @example
 * ```ts
 * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../storage/mod.ts";
 * import { hasExistingState } from "./recovery.ts";
 * console.log(await hasExistingState({
 *   logStore: new MemoryLogStore(),
 *   stableStore: new MemoryStableStore(),
 *   snapshotStore: new MemorySnapshotStore(),
 * })); // false
 * ```
 */
export async function hasExistingState(stores: StateStores): Promise<boolean> {
  const hs = await stores.stableStore.getState();
  if (hs && hs.term > 0) return true;
  if ((await stores.logStore.lastIndex()) > 0) return true;
  return (await stores.snapshotStore.list()).length > 0;
}

/**
 * Restore the FSM from the newest good snapshot and load the log after it.
 * A stored log that does not continue the snapshot is dropped.
 *
 * @example
 * ```ts
 * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../storage/mod.ts";
 * import { getLogger } from "@logtape/logtape";
 * import { loadStoredState } from "./recovery.ts";
 * const fsm = {
 *   apply: () => undefined,
 *   snapshot: () => ({ persist: async () => {}, release: () => {} }),
 *   restore: async () => {},
 * };
 * const state = await loadStoredState(fsm, {
 *   logStore: new MemoryLogStore(),
 *   stableStore: new MemoryStableStore(),
 *   snapshotStore: new MemorySnapshotStore(),
 * }, getLogger(["raftd", "raft"]));
 * console.log(state.lastIndex, state.log.tail.length); // 0 0
 * ```
 */
export async function loadStoredState<R>(
  fsm: FSM<R>,
  stores: StateStores,
  log: Logger,
  options: StoredLogReadOptions = {},
): Promise<StoredState> {
  const hardState = await stores.stableStore.getState();
  const snapshot = await restoreNewestSnapshot(stores.snapshotStore, fsm, log);
  let first = await stores.logStore.firstIndex();
  let last = await stores.logStore.lastIndex();
  if (snapshot && last > 0 && !(await logChainsTo(stores.logStore, snapshot.meta, first, last))) {
    // A crash between storing a leader's snapshot and installing it leaves a
    // log that ends before it, leaves a gap, or disagrees with it: the
    // snapshot wins, as the install would have done.
    log.warn("stored log {first}..{last} does not continue snapshot {index}; dropping it", {
      first,
      last,
      index: snapshot.meta.index,
    });
    await stores.logStore.deleteRange(first, last);
    first = 0;
    last = 0;
  }
  const builder = new StoredLogBuilder(options.keepBytes ?? Infinity);
  if (last > 0) {
    const from = snapshot && snapshot.meta.index >= last ? last + 1 : Math.max(first, 1);
    const batchBytes = options.batchBytes ?? DEFAULT_READ_BATCH_BYTES;
    // In batches bounded by bytes: the whole log is never in memory at once.
    for (let next = from; next <= last;) {
      const to = Math.min(last, next + READ_BATCH_ENTRIES - 1);
      const batch = await getLogsWithin(stores.logStore, next, to, batchBytes);
      if (batch.length === 0 || batch[0].index !== next) {
        throw new CorruptionError(
          `log store returned ${
            batch.length === 0 ? "nothing" : `entries from ${batch[0].index}`
          } for ${next}..${to}; expected entries from ${next} (stored log ${first}..${last})`,
        );
      }
      builder.add(batch);
      next = batch[batch.length - 1].index + 1;
    }
  }
  return { hardState, snapshot, log: builder.finish(), lastIndex: last };
}

/** Entries read at most per batch when loading the stored log (with a byte budget too). */
const READ_BATCH_ENTRIES = 4096;
/** Bytes read at most per batch when loading the stored log. */
const DEFAULT_READ_BATCH_BYTES = 4 * 1024 * 1024;

/** How {@linkcode loadStoredState} reads the log. */
export interface StoredLogReadOptions {
  /** Bytes of the newest entries to keep in memory (the node's log cache). Default: all. */
  keepBytes?: number;
  /** Bytes of entry data read at most per batch. Default 4 MiB. */
  batchBytes?: number;
}

/**
 * Operator recovery after losing quorum (hashicorp's RecoverCluster): replay
 * every stored entry into the FSM, write a snapshot carrying
 * `configuration`, and drop the log.
 *
 * @example
 * ```ts
 * import type { recoverCluster } from "./recovery.ts";
 * // See Raft.recoverCluster, which validates its arguments and calls this.
 * type Recover = typeof recoverCluster;
 * ```
 */
export async function recoverCluster<R>(
  config: ResolvedConfig,
  fsm: FSM<R>,
  stores: StateStores,
  configuration: Configuration,
): Promise<void> {
  const conf = checkConfiguration(configuration);
  try {
    checkStartingConfiguration(conf, config.id);
  } catch (e) {
    throw new ConfigurationError(`recovery: ${(e as Error).message}`);
  }
  if (!(await hasExistingState(stores))) {
    throw new InvalidStateError("refusing to recover a cluster with no existing state");
  }
  const snapshot = await restoreNewestSnapshot(stores.snapshotStore, fsm, config.logger);
  let index = snapshot?.meta.index ?? 0;
  let term = snapshot?.meta.term ?? 0;
  const first = await stores.logStore.firstIndex();
  const last = await stores.logStore.lastIndex();
  const restores = new RestoreAssembler();
  for (let i = Math.max(first, index + 1); i <= last && last > 0;) {
    const to = Math.min(last, i + READ_BATCH_ENTRIES - 1);
    const batch = await getLogsWithin(stores.logStore, i, to, DEFAULT_READ_BATCH_BYTES);
    if (batch.length === 0 || batch[0].index !== i) {
      throw new CorruptionError(`log store returned no entry ${i} of its log ${first}..${last}`);
    }
    i = batch[batch.length - 1].index + 1;
    for (const e of batch) {
      // The same order as a running node: applies, and operators' restores complete in the log.
      const pieces = restores.offer(e);
      if (pieces !== undefined) {
        await fsm.restore((async function* () {
          yield* pieces;
        })());
      }
      if (e.type === EntryType.Normal) fsm.apply({ index: e.index, term: e.term, data: e.data });
      index = e.index;
      term = e.term;
    }
  }
  const hs = await stores.stableStore.getState();
  // The snapshot's term is that of its last entry; the stored term stays in the stable store.
  const meta: SnapshotMeta = { index, term, configuration: conf, configurationIndex: index };
  await persistPrepared(await fsm.snapshot(), stores.snapshotStore, meta);
  if (last > 0) await stores.logStore.deleteRange(first, last);
  await stores.stableStore.setState({
    term: hs?.term ?? term,
    vote: hs?.vote ?? "",
    commit: index,
  });
  config.logger.warn("cluster recovered on {id}: snapshot at {index} with {n} servers", {
    id: config.id,
    index,
    n: conf.servers.length,
  });
}

/** Whether the stored log `first..last` continues `snap` (no gap, same term where they overlap). */
async function logChainsTo(
  logStore: LogStore,
  snap: SnapshotMeta,
  first: number,
  last: number,
): Promise<boolean> {
  if (last < snap.index || first > snap.index + 1) return false;
  if (first > snap.index) return true;
  const entry = await logStore.getLog(snap.index);
  return entry !== undefined && entry.term === snap.term;
}

/** Restore the newest snapshot whose data verifies; older ones are tried when one is corrupt. */
async function restoreNewestSnapshot<R>(
  store: SnapshotStore,
  fsm: FSM<R>,
  log: Logger,
): Promise<{ meta: SnapshotMeta; size: number } | undefined> {
  let corrupt = 0;
  for (const info of await store.list()) {
    let source: SnapshotSource;
    try {
      source = await store.open(info.id);
      await fsm.restore(source.data);
      const meta: SnapshotMeta = {
        index: info.index,
        term: info.term,
        configuration: info.configuration,
        configurationIndex: info.configurationIndex,
      };
      return { meta, size: info.size };
    } catch (e) {
      if (e instanceof CorruptionError) {
        corrupt++;
        log.warn("snapshot {id} is corrupt, trying an older one: {error}", {
          id: info.id,
          error: e.message,
        });
        continue;
      }
      throw e;
    }
  }
  if (corrupt > 0) {
    // The FSM may hold part of a corrupt state, and the log alone cannot
    // rebuild what the snapshots covered: an operator must step in.
    throw new CorruptionError(
      `all ${corrupt} stored snapshots failed their checks; restore the data directory from a backup or replace this server`,
    );
  }
  return undefined;
}
