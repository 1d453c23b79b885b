/**
 * The public Raft node: drives the pure core with timers, storage, the
 * transport and the FSM, and turns its work into Promises.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  type Config,
  type ReloadableConfig,
  type ResolvedConfig,
  validateConfig,
} from "./config.ts";
import {
  checkConfiguration,
  type ConfigurationChange,
  decodeConfiguration,
} from "./core/membership.ts";
import { type CoreOptions, RaftCore, type Ready } from "./core/raft_core.ts";
import {
  type Configuration,
  type Entry,
  EntryType,
  type HardState,
  type InstallSnapshotRequest,
  type Message,
  type RaftState,
  type ServerAddress,
  type ServerId,
  type SnapshotMeta,
} from "./core/types.ts";
import {
  AbortError,
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
} from "./errors.ts";
import type { FSM, FSMEntry, FSMSnapshot } from "./fsm.ts";
import { type Histogram, HistogramRecorder } from "./metrics.ts";
import type {
  LogStore,
  SnapshotInfo,
  SnapshotSource,
  SnapshotStore,
  StableStore,
} from "./storage/types.ts";
import type { Transport, TransportHandler } from "./transport/types.ts";

const log = getLogger(["raftd", "raft"]);
const EMPTY = new Uint8Array(0);

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
}

interface PendingApply {
  term: number;
  resolve: (r: ApplyResult<unknown>) => void;
  reject: (e: Error) => void;
  start: number;
  deadline: number;
  /** Noop and configuration entries resolve with their index only. */
  kind: "apply" | "index";
}

interface PendingRead {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  deadline: number;
  /** verifyLeader only needs the confirmation, not the apply. */
  waitApply: boolean;
  index: number;
}

interface PersistTask {
  kind: "ready";
  ready: Ready;
}

interface CompactTask {
  kind: "compact";
  index: number;
}

/** Drop the whole stored log (a restored user snapshot replaces it). */
interface ResetTask {
  kind: "reset";
  done: () => void;
}

type WriteTask = PersistTask | CompactTask | ResetTask;

function operationDeadline(options: OperationOptions | undefined, op: string): number {
  const timeout = options?.timeout;
  if (timeout === undefined) return Infinity;
  if (typeof timeout !== "number" || !(timeout > 0)) {
    throw new RangeError(`${op}: options.timeout must be a positive number of ms, got ${timeout}`);
  }
  return performance.now() + timeout;
}

function checkId(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
}

/**
 * A Raft node. Create it with {@linkcode Raft.create}; call
 * {@linkcode Raft.bootstrapCluster} once on the first server of a new cluster.
 *
 * @typeParam R What the FSM's `apply` returns.
 *
 * @example A single-node cluster over memory stores
 * ```ts
 * import { Raft } from "./raft.ts";
 * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "./storage/mod.ts";
 * import { MemoryNetwork } from "./transport/mod.ts";
 * import type { FSMEntry } from "./fsm.ts";
 *
 * const values: string[] = [];
 * const fsm = {
 *   apply: (e: FSMEntry) => values.push(new TextDecoder().decode(e.data)),
 *   snapshot: () => ({ persist: async () => {}, release: () => {} }),
 *   restore: async () => {},
 * };
 * const network = new MemoryNetwork();
 * const raft = await Raft.create({ id: "n1", heartbeatInterval: 20, electionTimeout: 100 }, fsm, {
 *   logStore: new MemoryLogStore(),
 *   stableStore: new MemoryStableStore(),
 *   snapshotStore: new MemorySnapshotStore(),
 *   transport: network.transport("n1"),
 * });
 * await raft.bootstrapCluster({ servers: [{ id: "n1", address: "n1", suffrage: "voter" }] });
 * while (raft.state !== "leader") await new Promise((r) => setTimeout(r, 10));
 * const { index } = await raft.apply(new TextEncoder().encode("hello"));
 * console.log(index, values); // 3 ["hello"]
 * await raft.shutdown();
 * ```
 */
export class Raft<R = unknown> {
  /** This server's id. */
  readonly id: ServerId;
  #config: ResolvedConfig;
  #core: RaftCore;
  #fsm: FSM<R>;
  #logStore: LogStore;
  #stableStore: StableStore;
  #snapshotStore: SnapshotStore;
  #transport: Transport;

  #tickMs: number;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #snapshotTimer: ReturnType<typeof setInterval> | undefined;
  #readyScheduled = false;
  #readyChannel: MessageChannel | undefined;
  #inReadyLoop = false;
  #shutdown = false;
  #failed: Error | undefined;

  #pendingApplies = new Map<number, PendingApply>();
  #deadlines = 0;
  #pendingReads = new Map<number, PendingRead>();
  #readsAwaitingApply: PendingRead[] = [];
  #nextReadId = 1;
  #transferWaiters: Array<{ resolve: () => void; reject: (e: Error) => void; deadline: number }> =
    [];
  #persistWaiters: Array<{ seq: number; resolve: () => void; reject: (e: Error) => void }> = [];

  #writeQueue: WriteTask[] = [];
  #writing = false;
  #lastReadySeq = 0;
  #leaderSinceTick = 0;
  #storedLastIndex = 0;
  #lastAdvancedSeq = 0;
  #lastHardState: HardState = { term: 0, vote: "", commit: 0 };
  #hardStateWrittenAt = 0;
  #commitHintDirty = false;

  #applyQueue: Array<Entry[] | SnapshotMeta> = [];
  #applyBlocked = 0;
  #appliedIndex = 0;
  #appliedConfiguration: { index: number; configuration: Configuration } = {
    index: 0,
    configuration: { servers: [] },
  };
  #snapshotting = false;
  #restoreInProgress = false;
  /** Serializes taking, installing and restoring snapshots (they all touch the FSM's whole state). */
  #snapshotLock: Promise<void> = Promise.resolve();
  #lastSnapshot: { index: number; term: number; size: number } = { index: 0, term: 0, size: 0 };

  #state: RaftState = "follower";
  #leader: ServerId = "";
  #lastContact: number | undefined;
  #addresses = new Map<ServerId, ServerAddress>();
  #observers = new Set<
    { callback: (o: Observation) => void; filter?: (o: Observation) => boolean }
  >();
  #lastConfigIndexSeen = 0;
  #lastConfigSeen: Configuration = { servers: [] };
  #failedHeartbeats = new Set<ServerId>();

  #fsyncs = 0;
  #storeLogsSeconds = new HistogramRecorder();
  #applySeconds = new HistogramRecorder();
  #commitSeconds = new HistogramRecorder();
  #messagesSent: Record<string, number> = {};
  #messagesReceived: Record<string, number> = {};
  #snapshotsTaken = 0;
  #snapshotsInstalled = 0;

  private constructor(
    config: ResolvedConfig,
    fsm: FSM<R>,
    stores: RaftStores,
    core: RaftCore,
    tickMs: number,
  ) {
    this.id = config.id;
    this.#config = config;
    this.#fsm = fsm;
    this.#logStore = stores.logStore;
    this.#stableStore = stores.stableStore;
    this.#snapshotStore = stores.snapshotStore;
    this.#transport = stores.transport;
    this.#core = core;
    this.#tickMs = tickMs;
  }

  // ------------------------------------------------------------- lifecycle

  /**
   * Start a node on its stores: restores the newest valid snapshot into the
   * FSM, loads the log, applies what is known committed, and starts the
   * transport and timers.
   */
  static async create<R>(config: Config, fsm: FSM<R>, stores: RaftStores): Promise<Raft<R>> {
    const resolved = validateConfig(config);
    if (
      !fsm || typeof fsm.apply !== "function" || typeof fsm.snapshot !== "function" ||
      typeof fsm.restore !== "function"
    ) {
      throw new TypeError("fsm must implement apply(entry), snapshot() and restore(data)");
    }
    for (const key of ["logStore", "stableStore", "snapshotStore", "transport"] as const) {
      if (!stores || !stores[key]) throw new TypeError(`stores.${key} is required`);
    }
    const hardState = await stores.stableStore.getState();
    const snapshot = await restoreNewestSnapshot(stores.snapshotStore, fsm);
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
    let entries: Entry[] = [];
    if (last > 0) {
      const from = snapshot && snapshot.meta.index >= last ? last + 1 : Math.max(first, 1);
      if (from <= last) entries = await stores.logStore.getLogs(from, last);
      if (entries.length !== Math.max(0, last - from + 1)) {
        throw new CorruptionError(
          `log store returned ${entries.length} entries for ${from}..${last}; expected ${
            last - from + 1
          }`,
        );
      }
    }
    const { tickMs, coreOptions } = coreOptionsFor(resolved);
    const core = new RaftCore(coreOptions, { hardState, snapshot: snapshot?.meta, entries });
    const raft = new Raft(resolved, fsm, stores, core, tickMs);
    raft.#storedLastIndex = last;
    raft.#appliedIndex = core.appliedIndex;
    raft.#lastHardState = hardState ?? { term: 0, vote: "", commit: 0 };
    if (snapshot) {
      raft.#lastSnapshot = {
        index: snapshot.meta.index,
        term: snapshot.meta.term,
        size: snapshot.size,
      };
      raft.#appliedConfiguration = {
        index: snapshot.meta.configurationIndex,
        configuration: snapshot.meta.configuration,
      };
    }
    raft.#noteConfiguration();
    await stores.transport.start(raft.#handler());
    raft.#tickTimer = setInterval(() => raft.#tick(), tickMs);
    raft.#armSnapshotTimer();
    log.info(
      "raft {id} started: term {term}, last index {last}, commit {commit}, snapshot {snap}",
      {
        id: resolved.id,
        term: core.term,
        last: core.lastIndex,
        commit: core.commitIndex,
        snap: snapshot?.meta.index ?? 0,
      },
    );
    raft.#scheduleReady();
    return raft;
  }

  /** Whether the stores hold any Raft state (a term, a log or a snapshot). */
  static async hasExistingState(stores: Omit<RaftStores, "transport">): Promise<boolean> {
    const hs = await stores.stableStore.getState();
    if (hs && hs.term > 0) return true;
    if ((await stores.logStore.lastIndex()) > 0) return true;
    return (await stores.snapshotStore.list()).length > 0;
  }

  /**
   * Operator recovery after losing quorum (hashicorp's RecoverCluster, the
   * peers.json case): on a stopped node's stores, replay every stored entry
   * into the FSM, write a snapshot carrying `configuration`, and drop the log.
   * Start the node afterwards; do this on every surviving server with the
   * same configuration. Entries that were never committed may be kept.
   */
  static async recoverCluster<R>(
    config: Config,
    fsm: FSM<R>,
    stores: Omit<RaftStores, "transport">,
    configuration: Configuration,
  ): Promise<void> {
    const resolved = validateConfig(config);
    const conf = checkConfiguration(configuration);
    if (!conf.servers.some((s) => s.suffrage === "voter")) {
      throw new ConfigurationError("recovery configuration must contain at least one voter");
    }
    if (!(await Raft.hasExistingState(stores))) {
      throw new InvalidStateError("refusing to recover a cluster with no existing state");
    }
    const snapshot = await restoreNewestSnapshot(stores.snapshotStore, fsm);
    let index = snapshot?.meta.index ?? 0;
    let term = snapshot?.meta.term ?? 0;
    const first = await stores.logStore.firstIndex();
    const last = await stores.logStore.lastIndex();
    for (let i = Math.max(first, index + 1); i <= last && last > 0; i += 1024) {
      const batch = await stores.logStore.getLogs(i, Math.min(last, i + 1023));
      for (const e of batch) {
        if (e.type === EntryType.Normal) fsm.apply({ index: e.index, term: e.term, data: e.data });
        index = e.index;
        term = e.term;
      }
    }
    const hs = await stores.stableStore.getState();
    // The snapshot's term is that of its last entry; the stored term stays in the stable store.
    const meta: SnapshotMeta = { index, term, configuration: conf, configurationIndex: index };
    await persistFsmSnapshot(fsm, stores.snapshotStore, meta);
    if (last > 0) await stores.logStore.deleteRange(first, last);
    await stores.stableStore.setState({
      term: hs?.term ?? term,
      vote: hs?.vote ?? "",
      commit: index,
    });
    log.warn("cluster recovered on {id}: snapshot at {index} with {n} servers", {
      id: resolved.id,
      index,
      n: conf.servers.length,
    });
  }

  /**
   * Write the first configuration of a brand-new cluster. Throws
   * {@linkcode InvalidStateError} when this node already has state.
   */
  async bootstrapCluster(configuration: Configuration): Promise<void> {
    this.#checkRunning();
    const conf = checkConfiguration(configuration);
    this.#core.bootstrap(conf);
    this.#noteConfiguration();
    await this.#waitPersisted();
  }

  /**
   * Stop the node: timers, transport, pending operations (rejected with
   * {@linkcode ShutdownError}); waits for in-flight writes. Stores stay open
   * (they belong to the caller).
   */
  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    clearInterval(this.#tickTimer);
    clearInterval(this.#snapshotTimer);
    this.#closeReadyChannel();
    this.#state = "shutdown";
    try {
      await this.#transport.close();
    } catch (e) {
      log.warn("closing transport failed: {error}", { error: String(e) });
    }
    const giveUp = performance.now() + this.#config.storageTimeout;
    await Promise.race([
      this.#snapshotLock,
      new Promise((r) => setTimeout(r, this.#config.storageTimeout)),
    ]);
    while (this.#writing && performance.now() < giveUp) await new Promise((r) => setTimeout(r, 1));
    if (!this.#failed && !this.#writing && this.#commitHintDirty) {
      try {
        // Only the commit index of a persisted Ready: its entries are on disk.
        await this.#stableStore.setState(this.#lastHardState);
      } catch (e) {
        log.warn("writing the commit hint at shutdown failed: {error}", { error: String(e) });
      }
    }
    this.#rejectEverything(new ShutdownError());
    this.#emit({ type: "state", state: "shutdown", term: this.#core.term });
  }

  // ------------------------------------------------------------ operations

  /**
   * Replicate `data` and apply it to the FSM. Resolves with the FSM's result
   * once the entry is committed (durable on a quorum) and applied here.
   */
  apply(data: Uint8Array, options?: OperationOptions): Promise<ApplyResult<R>> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`apply: data must be a Uint8Array, got ${typeOf(data)}`));
    }
    return this.#propose(data, EntryType.Normal, "apply", options) as Promise<ApplyResult<R>>;
  }

  /** Resolves once every entry before it is applied (a no-op entry committed and applied). */
  async barrier(options?: OperationOptions): Promise<IndexResult> {
    const r = await this.#propose(EMPTY, EntryType.Noop, "barrier", options);
    return { index: r.index };
  }

  /** Confirm with a quorum that this node is still the leader. */
  async verifyLeader(options?: OperationOptions): Promise<void> {
    await this.#read(false, false, "verifyLeader", options);
  }

  /**
   * A linearizable read point: resolves with an index once this leader has
   * confirmed its leadership and applied up to it; reads of the FSM are then
   * linearizable. With `lease`, a valid leader lease skips the round trip.
   */
  readIndex(options?: ReadOptions): Promise<number> {
    return this.#read(options?.lease === true, true, "readIndex", options);
  }

  /** Add a voter: joins as staging and is promoted once caught up. Resolves when the change commits. */
  addVoter(
    id: ServerId,
    address: ServerAddress,
    options?: MembershipOptions,
  ): Promise<IndexResult> {
    checkId(id, "addVoter: id");
    checkId(address, "addVoter: address");
    return this.#changeMembership({ op: "addVoter", id, address }, "addVoter", options);
  }

  /** Add a server that receives the log but does not vote. */
  addNonvoter(
    id: ServerId,
    address: ServerAddress,
    options?: MembershipOptions,
  ): Promise<IndexResult> {
    checkId(id, "addNonvoter: id");
    checkId(address, "addNonvoter: address");
    return this.#changeMembership({ op: "addNonvoter", id, address }, "addNonvoter", options);
  }

  /** Turn a voter into a non-voter. */
  demoteVoter(id: ServerId, options?: MembershipOptions): Promise<IndexResult> {
    checkId(id, "demoteVoter: id");
    return this.#changeMembership({ op: "demote", id }, "demoteVoter", options);
  }

  /** Remove a server. A leader removing itself hands over and steps down once committed. */
  removeServer(id: ServerId, options?: MembershipOptions): Promise<IndexResult> {
    checkId(id, "removeServer: id");
    return this.#changeMembership({ op: "remove", id }, "removeServer", options);
  }

  /** The latest configuration (in effect as soon as appended) and its index. */
  getConfiguration(): { index: number; configuration: Configuration } {
    return this.#core.latestConfiguration();
  }

  /**
   * Hand leadership to `id` (or the most up-to-date voter): catch it up,
   * then tell it to start an election. Resolves once another node leads.
   */
  leadershipTransfer(id?: ServerId, options?: OperationOptions): Promise<void> {
    try {
      this.#checkRunning();
      if (id !== undefined) checkId(id, "leadershipTransfer: id");
      const deadline = operationDeadline(options, "leadershipTransfer");
      this.#core.transferLeadership(id);
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      this.#transferWaiters.push({ resolve, reject, deadline });
      this.#scheduleReady();
      return promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Take a snapshot now and compact the log (manual compaction). */
  async snapshot(): Promise<SnapshotInfo> {
    this.#checkRunning();
    if (this.#snapshotting) throw new InvalidStateError("a snapshot is already being taken");
    if (this.#appliedIndex <= this.#lastSnapshot.index) {
      throw new InvalidStateError(
        `nothing new to snapshot: applied index ${this.#appliedIndex} is already in the snapshot at ${this.#lastSnapshot.index}`,
      );
    }
    return await this.#takeSnapshot();
  }

  /**
   * Replace the cluster's state with a user snapshot (leader only; operator
   * action). The state takes index `lastIndex + 1` so every follower installs
   * it. Resolves once a quorum holds it. If the leader fails before that,
   * the restore may be lost or partial, as with hashicorp/raft's Restore.
   */
  async restore(data: AsyncIterable<Uint8Array>, options?: OperationOptions): Promise<void> {
    this.#checkRunning();
    if (this.#restoreInProgress) throw new InvalidStateError("a restore is already in progress");
    await this.barrier(options);
    this.#restoreInProgress = true;
    try {
      await this.#withSnapshotLock(() => this.#restoreLocked(data));
    } finally {
      this.#restoreInProgress = false;
    }
    this.#scheduleReady();
    await this.barrier(options);
  }

  async #restoreLocked(data: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.#core.state !== "leader") throw this.#notLeader();
    const config = this.#core.latestConfiguration();
    const lastIndex = this.#core.lastIndex;
    const term = this.#core.term;
    const planned: SnapshotMeta = {
      index: lastIndex + 1,
      term,
      configuration: config.configuration,
      configurationIndex: config.index,
    };
    const sink = await this.#snapshotStore.create(planned);
    let info: SnapshotInfo;
    try {
      for await (const chunk of data) await sink.write(chunk);
      info = await sink.close();
    } catch (e) {
      await sink.cancel();
      throw e;
    }
    // Wait for queued writes; stop waiting if leadership is lost (a follower's
    // snapshot install in that queue would wait for the lock we hold).
    while (
      (this.#writing || this.#writeQueue.length > 0) && this.#core.state === "leader" &&
      this.#core.term === term && !this.#failed && !this.#shutdown
    ) {
      await new Promise((r) => setTimeout(r, 1));
    }
    // Proposals are refused during a restore, but the leader may still have
    // appended (a promotion) or lost its term: then the snapshot's index is
    // taken and it must go.
    if (
      this.#core.state !== "leader" || this.#core.term !== term ||
      this.#core.lastIndex !== lastIndex ||
      this.#core.latestConfiguration().index !== config.index ||
      this.#writing || this.#writeQueue.length > 0 || this.#failed !== undefined || this.#shutdown
    ) {
      await this.#discardSnapshot(info.id);
      throw new InvalidStateError("the log changed while the restore was being written; retry");
    }
    this.#applyBlocked++;
    try {
      const meta = this.#core.installUserSnapshot(config);
      const source = await this.#snapshotStore.open(info.id);
      try {
        await this.#fsm.restore(source.data);
      } catch (e) {
        this.#fail(e as Error, "restoring the FSM from a user snapshot");
        throw e;
      }
      this.#skipPendingUpTo(meta.index);
      this.#appliedIndex = meta.index;
      this.#appliedConfiguration = {
        index: meta.configurationIndex,
        configuration: meta.configuration,
      };
      this.#lastSnapshot = { index: meta.index, term: meta.term, size: info.size };
      this.#core.snapshotTaken(meta);
      // The old log goes in write order: after what is queued, before what follows.
      await new Promise<void>((done) => {
        this.#writeQueue.push({ kind: "reset", done });
        if (!this.#writing) void this.#writeLoop();
      });
    } finally {
      this.#applyBlocked--;
      this.#drainApplyQueue();
    }
  }

  async #discardSnapshot(id: string): Promise<void> {
    if (this.#snapshotStore.remove) {
      await this.#snapshotStore.remove(id);
      return;
    }
    const error = new StorageError(
      `snapshot ${id} of an aborted restore cannot be removed (the snapshot store has no remove())`,
    );
    this.#fail(error, "aborting a restore");
    throw error;
  }

  /** Run `fn` alone among snapshot takes, installs and restores. */
  #withSnapshotLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#snapshotLock.then(fn);
    this.#snapshotLock = run.then(() => {}, () => {});
    return run;
  }

  /** The applied index jumps past pending operations (snapshot): their entries were replaced. */
  #skipPendingUpTo(index: number): void {
    for (const [i, p] of this.#pendingApplies) {
      if (i > index) continue;
      this.#pendingApplies.delete(i);
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(new LeadershipLostError("unknown", `entry ${i} was superseded by a snapshot`));
    }
  }

  /**
   * Be told of state changes, leader changes, membership changes, failed
   * heartbeats and snapshots. Returns a function that unsubscribes.
   */
  observe(callback: (o: Observation) => void, filter?: (o: Observation) => boolean): () => void {
    if (typeof callback !== "function") {
      throw new TypeError(`observe: callback must be a function, got ${typeOf(callback)}`);
    }
    const entry = { callback, filter };
    this.#observers.add(entry);
    return () => this.#observers.delete(entry);
  }

  /** Change timing and snapshot settings at run time. */
  reloadConfig(changes: ReloadableConfig): void {
    const next = validateConfig({ ...this.#config, ...changes });
    this.#config = next;
    const { coreOptions } = coreOptionsFor(next, this.#tickMs);
    this.#core.reconfigure({
      electionTicks: coreOptions.electionTicks,
      heartbeatTicks: coreOptions.heartbeatTicks,
      leaseTicks: coreOptions.leaseTicks,
      autoPromoteNonvoters: coreOptions.autoPromoteNonvoters,
    });
    this.#armSnapshotTimer();
  }

  // --------------------------------------------------------------- getters

  /** Role of the node. */
  get state(): RaftState {
    return this.#shutdown || this.#failed ? "shutdown" : this.#core.state;
  }

  /** The leader as far as this node knows. */
  get leader(): LeaderInfo | undefined {
    const id = this.#core.leader;
    return id ? { id, address: this.#addresses.get(id) ?? "" } : undefined;
  }

  /** `Date.now()` of the last message from the leader (now, on the leader). */
  get lastContact(): number | undefined {
    return this.#core.state === "leader" ? Date.now() : this.#lastContact;
  }

  /** Current term. */
  get currentTerm(): number {
    return this.#core.term;
  }

  /** Last log index. */
  get lastIndex(): number {
    return this.#core.lastIndex;
  }

  /** Commit index. */
  get commitIndex(): number {
    return this.#core.commitIndex;
  }

  /** Index applied to the FSM. */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** Index of the newest snapshot. */
  get lastSnapshotIndex(): number {
    return this.#lastSnapshot.index;
  }

  /** Counters, gauges and latency histograms. */
  stats(): RaftStats {
    const conf = this.#core.latestConfiguration();
    return {
      id: this.id,
      state: this.state,
      term: this.#core.term,
      leaderId: this.#core.leader || undefined,
      lastLogIndex: this.#core.lastIndex,
      lastLogTerm: this.#core.lastTerm,
      commitIndex: this.#core.commitIndex,
      appliedIndex: this.#appliedIndex,
      lastSnapshotIndex: this.#lastSnapshot.index,
      lastSnapshotTerm: this.#lastSnapshot.term,
      lastSnapshotSize: this.#lastSnapshot.size,
      lastContactMs: this.#core.state === "leader"
        ? 0
        : this.#lastContact === undefined
        ? undefined
        : Date.now() - this.#lastContact,
      numPeers: conf.configuration.servers.filter((s) => s.id !== this.id).length,
      configurationIndex: conf.index,
      fsyncs: this.#fsyncs,
      storeLogsSeconds: this.#storeLogsSeconds.snapshot(),
      applySeconds: this.#applySeconds.snapshot(),
      commitSeconds: this.#commitSeconds.snapshot(),
      messagesSent: { ...this.#messagesSent },
      messagesReceived: { ...this.#messagesReceived },
      snapshotsTaken: this.#snapshotsTaken,
      snapshotsInstalled: this.#snapshotsInstalled,
    };
  }

  // ------------------------------------------------------------- internals

  #checkRunning(): void {
    if (this.#shutdown) throw new ShutdownError();
    if (this.#failed) {
      throw new StorageError(`raft stopped after a storage failure: ${this.#failed.message}`);
    }
  }

  #notLeader(): NotLeaderError {
    return new NotLeaderError(this.leader);
  }

  #propose(
    data: Uint8Array,
    type: EntryType,
    op: string,
    options: OperationOptions | undefined,
  ): Promise<ApplyResult<unknown>> {
    try {
      this.#checkRunning();
      if (this.#restoreInProgress) {
        throw new InvalidStateError("a restore is in progress; retry after it completes");
      }
      const deadline = operationDeadline(options, op);
      options?.signal?.throwIfAborted();
      const { index, term } = this.#core.propose([data], type);
      const { promise, resolve, reject } = Promise.withResolvers<ApplyResult<unknown>>();
      const pending: PendingApply = {
        term,
        resolve,
        reject,
        start: performance.now(),
        deadline,
        kind: type === EntryType.Normal ? "apply" : "index",
      };
      this.#pendingApplies.set(index, pending);
      if (deadline !== Infinity) this.#deadlines++;
      if (options?.signal) this.#watchSignal(options.signal, index, op);
      this.#scheduleReady();
      return promise;
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") {
        return Promise.reject(new AbortError(op, "not_committed", { cause: e }));
      }
      return Promise.reject(e);
    }
  }

  #watchSignal(signal: AbortSignal, index: number, op: string): void {
    const p = this.#pendingApplies.get(index);
    if (!p) return;
    const onAbort = () => {
      if (this.#pendingApplies.get(index) !== p) return;
      this.#pendingApplies.delete(index);
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(
        new AbortError(op, index <= this.#core.commitIndex ? "committed" : "unknown", {
          cause: signal.reason,
        }),
      );
    };
    signal.addEventListener("abort", onAbort, { once: true });
    // However the operation ends, stop listening: a long-lived signal must not
    // accumulate one listener per operation.
    const { resolve, reject } = p;
    p.resolve = (r) => {
      signal.removeEventListener("abort", onAbort);
      resolve(r);
    };
    p.reject = (e) => {
      signal.removeEventListener("abort", onAbort);
      reject(e);
    };
  }

  async #changeMembership(
    change: ConfigurationChange,
    op: string,
    options: MembershipOptions | undefined,
  ): Promise<IndexResult> {
    this.#checkRunning();
    const deadline = operationDeadline(options, op);
    const prevIndex = options?.prevIndex ?? 0;
    if (!Number.isInteger(prevIndex) || prevIndex < 0) {
      throw new RangeError(
        `${op}: options.prevIndex must be a non-negative integer, got ${prevIndex}`,
      );
    }
    if (this.#restoreInProgress) {
      throw new InvalidStateError("a restore is in progress; retry after it completes");
    }
    // A change right after an election or another change waits (at most 10 s
    // or the timeout) for the previous one to commit instead of failing at once.
    const giveUp = Math.min(deadline, performance.now() + 10_000);
    for (;;) {
      options?.signal?.throwIfAborted();
      try {
        const { index, term } = this.#core.proposeConfigurationChange(change, prevIndex);
        this.#noteConfiguration();
        const { promise, resolve, reject } = Promise.withResolvers<ApplyResult<unknown>>();
        this.#pendingApplies.set(index, {
          term,
          resolve,
          reject,
          start: performance.now(),
          deadline,
          kind: "index",
        });
        if (deadline !== Infinity) this.#deadlines++;
        if (options?.signal) this.#watchSignal(options.signal, index, op);
        this.#scheduleReady();
        await promise;
        return { index };
      } catch (e) {
        const retriable = e instanceof ConfigurationError && prevIndex === 0 &&
          /in progress|not committed an entry/.test(e.message);
        if (!retriable || performance.now() + this.#tickMs > giveUp) throw e;
        await new Promise((r) => setTimeout(r, this.#tickMs));
        this.#checkRunning();
      }
    }
  }

  #read(
    lease: boolean,
    waitApply: boolean,
    op: string,
    options: OperationOptions | undefined,
  ): Promise<number> {
    try {
      this.#checkRunning();
      const deadline = operationDeadline(options, op);
      options?.signal?.throwIfAborted();
      const id = this.#nextReadId++;
      this.#core.readIndex(id, lease);
      const { promise, resolve, reject } = Promise.withResolvers<number>();
      const pending: PendingRead = { resolve, reject, deadline, waitApply, index: 0 };
      this.#pendingReads.set(id, pending);
      if (deadline !== Infinity) this.#deadlines++;
      const signal = options?.signal;
      if (signal) {
        const onAbort = () => {
          if (this.#pendingReads.get(id) === pending) this.#pendingReads.delete(id);
          else {
            const at = this.#readsAwaitingApply.indexOf(pending);
            if (at < 0) return;
            this.#readsAwaitingApply.splice(at, 1);
          }
          if (pending.deadline !== Infinity) this.#deadlines--;
          pending.reject(new AbortError(op, "not_committed", { cause: signal.reason }));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        pending.resolve = (index) => {
          signal.removeEventListener("abort", onAbort);
          resolve(index);
        };
        pending.reject = (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        };
      }
      this.#scheduleReady();
      return promise;
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") {
        return Promise.reject(new AbortError(op, "not_committed", { cause: e }));
      }
      return Promise.reject(e);
    }
  }

  #waitPersisted(): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    // Everything produced so far goes into the next Ready at the latest.
    this.#persistWaiters.push({ seq: this.#lastReadySeq + 1, resolve, reject });
    this.#scheduleReady();
    return promise;
  }

  #handler(): TransportHandler {
    return {
      onMessage: (m: Message, from: ServerAddress) => {
        if (this.#shutdown) return;
        if (from !== "" && !this.#addresses.has(m.from)) this.#addresses.set(m.from, from);
        this.#messagesReceived[m.type] = (this.#messagesReceived[m.type] ?? 0) + 1;
        try {
          this.#core.step(m);
        } catch (e) {
          this.#fail(e as Error, "processing a message");
          return;
        }
        if (m.from === this.#core.leader && this.#core.state !== "leader") {
          this.#lastContact = Date.now();
        }
        this.#scheduleReady();
      },
      onSnapshot: (
        m: InstallSnapshotRequest,
        data: AsyncIterable<Uint8Array>,
        from: ServerAddress,
      ) => {
        if (from !== "" && !this.#addresses.has(m.from)) this.#addresses.set(m.from, from);
        return this.#receiveSnapshot(m, data);
      },
    };
  }

  async #receiveSnapshot(
    m: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.#shutdown || this.#failed) throw new ShutdownError();
    if (m.term < this.#core.term) {
      throw new RaftError(`stale snapshot from ${m.from}: term ${m.term} < ${this.#core.term}`);
    }
    this.#messagesReceived[m.type] = (this.#messagesReceived[m.type] ?? 0) + 1;
    const sink = await this.#snapshotStore.create(m.meta);
    try {
      for await (const chunk of data) await sink.write(chunk);
      await sink.close();
    } catch (e) {
      await sink.cancel();
      throw e;
    }
    if (this.#shutdown) throw new ShutdownError();
    try {
      this.#core.step(m);
    } catch (e) {
      this.#fail(e as Error, "installing a snapshot");
      throw e;
    }
    this.#lastContact = Date.now();
    this.#scheduleReady();
  }

  #scheduleReady(): void {
    if (this.#readyScheduled || this.#shutdown) return;
    this.#readyScheduled = true;
    // A macrotask, not a microtask: every request that arrived in this
    // event-loop turn joins the same Ready (one append, one fsync), at the cost
    // of a few microseconds. setTimeout(0) would cost milliseconds.
    if (!this.#readyChannel) {
      this.#readyChannel = new MessageChannel();
      this.#readyChannel.port2.onmessage = this.#runScheduledReady;
    }
    this.#readyChannel.port1.postMessage(null);
  }

  #closeReadyChannel(): void {
    this.#readyChannel?.port1.close();
    this.#readyChannel?.port2.close();
    this.#readyChannel = undefined;
  }

  #runScheduledReady = (): void => {
    this.#readyScheduled = false;
    this.#processReady();
  };

  #tick(): void {
    if (this.#shutdown || this.#failed) return;
    this.#core.tick();
    this.#checkDeadlines();
    this.#checkTransfers();
    this.#checkHeartbeats();
    this.#processReady();
  }

  /** Drain the core: send messages, queue writes, apply committed entries. */
  #processReady(): void {
    if (this.#inReadyLoop || this.#shutdown || this.#failed) return;
    this.#inReadyLoop = true;
    try {
      while (this.#core.hasReady()) {
        const rd = this.#core.ready();
        this.#lastReadySeq = rd.seq;
        if (rd.softState) this.#onSoftState(rd.softState.state, rd.softState.leader);
        if (rd.entries.length > 0 || rd.snapshot) this.#noteConfiguration();
        for (const m of rd.messages) this.#sendMessage(m);
        // Entries committed after a snapshot to install wait for the install.
        if (rd.snapshot) this.#applyBlocked++;
        this.#writeQueue.push({ kind: "ready", ready: rd });
        if (rd.committed.length > 0) {
          this.#applyQueue.push(rd.committed);
        }
        for (const rs of rd.readStates) this.#onReadState(rs.id, rs.index);
        for (const id of rd.droppedReads) this.#dropRead(id);
      }
    } finally {
      this.#inReadyLoop = false;
    }
    this.#drainApplyQueue();
    if (!this.#writing && this.#writeQueue.length > 0) void this.#writeLoop();
  }

  #sendMessage(m: Message): void {
    this.#messagesSent[m.type] = (this.#messagesSent[m.type] ?? 0) + 1;
    const address = this.#addresses.get(m.to);
    if (address === undefined) {
      log.debug("no address for {to}; dropping {type}", { to: m.to, type: m.type });
      if (m.type === "snapshot") this.#core.reportSnapshot(m.to, false);
      return;
    }
    if (m.type === "snapshot") {
      void this.#sendSnapshot(address, m);
      return;
    }
    this.#transport.send(address, m);
  }

  async #sendSnapshot(address: ServerAddress, m: InstallSnapshotRequest): Promise<void> {
    let ok = false;
    try {
      const info = (await this.#snapshotStore.list()).find((s) =>
        s.index === m.meta.index && s.term === m.meta.term
      );
      if (!info) {
        throw new RaftError(`snapshot ${m.meta.term}-${m.meta.index} is no longer in the store`);
      }
      const source = await this.#snapshotStore.open(info.id);
      log.info("sending snapshot {index} ({size} bytes) to {to}", {
        index: info.index,
        size: info.size,
        to: m.to,
      });
      await this.#transport.sendSnapshot(address, m, source.data);
      ok = true;
    } catch (e) {
      log.warn("sending snapshot to {to} failed: {error}", { to: m.to, error: String(e) });
    }
    if (this.#shutdown) return;
    this.#core.reportSnapshot(m.to, ok);
    this.#scheduleReady();
  }

  #onSoftState(state: RaftState, leader: ServerId): void {
    const wasLeader = this.#state === "leader";
    if (state !== this.#state) {
      this.#state = state;
      log.info("{id} is now {state} in term {term}", { id: this.id, state, term: this.#core.term });
      this.#emit({ type: "state", state, term: this.#core.term });
    }
    if (leader !== this.#leader) {
      this.#leader = leader;
      this.#emit({ type: "leader", leader: this.leader, term: this.#core.term });
      if (leader !== "" && leader !== this.id) this.#lastContact = Date.now();
    }
    if (wasLeader && state !== "leader") this.#onLeadershipLost();
    if (!wasLeader && state === "leader") this.#leaderSinceTick = this.#core.ticks;
    if (state !== "leader") {
      for (const w of this.#transferWaiters) w.resolve();
      this.#transferWaiters = [];
    }
  }

  #onLeadershipLost(): void {
    const commit = this.#core.commitIndex;
    for (const [index, p] of this.#pendingApplies) {
      if (index <= commit) continue; // committed: it will be applied and resolved
      this.#pendingApplies.delete(index);
      if (p.deadline !== Infinity) this.#deadlines--;
      p.reject(new LeadershipLostError("unknown"));
    }
    this.#failedHeartbeats.clear();
  }

  #onReadState(id: number, index: number): void {
    const p = this.#pendingReads.get(id);
    if (!p) return;
    if (!p.waitApply || this.#appliedIndex >= index) {
      this.#finishRead(id, p, index);
      return;
    }
    p.index = index;
    this.#readsAwaitingApply.push(p);
    this.#pendingReads.delete(id);
  }

  #finishRead(id: number, p: PendingRead, index: number): void {
    this.#pendingReads.delete(id);
    if (p.deadline !== Infinity) this.#deadlines--;
    p.resolve(index);
  }

  #dropRead(id: number): void {
    const p = this.#pendingReads.get(id);
    if (!p) return;
    this.#pendingReads.delete(id);
    if (p.deadline !== Infinity) this.#deadlines--;
    p.reject(new NotLeaderError(this.leader, "leadership lost before the read was confirmed"));
  }

  #releaseReads(): void {
    if (this.#readsAwaitingApply.length === 0) return;
    let kept = 0;
    for (const p of this.#readsAwaitingApply) {
      if (p.index <= this.#appliedIndex) {
        if (p.deadline !== Infinity) this.#deadlines--;
        p.resolve(p.index);
      } else this.#readsAwaitingApply[kept++] = p;
    }
    this.#readsAwaitingApply.length = kept;
  }

  /** Persist queued Readies in order: group commit (one log write and one fsync per batch). */
  async #writeLoop(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#writeQueue.length > 0 && !this.#failed) {
        const task = this.#writeQueue[0];
        if (task.kind === "compact") {
          this.#writeQueue.shift();
          await this.#compactLog(task.index);
          continue;
        }
        if (task.kind === "reset") {
          this.#writeQueue.shift();
          await this.#clearLog();
          task.done();
          continue;
        }
        // Take every queued Ready up to the next compaction task.
        const batch: Ready[] = [];
        while (this.#writeQueue.length > 0 && this.#writeQueue[0].kind === "ready") {
          batch.push((this.#writeQueue.shift() as PersistTask).ready);
        }
        await this.#persist(batch);
        for (const rd of batch) {
          this.#core.advance(rd);
          this.#lastAdvancedSeq = rd.seq;
        }
        this.#releasePersistWaiters();
        this.#processReady();
      }
    } catch (e) {
      this.#fail(e as Error, "writing to storage");
    } finally {
      this.#writing = false;
    }
  }

  async #persist(batch: Ready[]): Promise<void> {
    let entries: Entry[] = [];
    let hardState: HardState | undefined;
    for (const rd of batch) {
      if (rd.snapshot) {
        // Write what came before, then install the snapshot.
        if (entries.length > 0) await this.#storeEntries(entries);
        entries = [];
        await this.#installSnapshot(rd.snapshot);
      }
      if (rd.entries.length > 0) {
        const first = rd.entries[0].index;
        if (entries.length > 0 && first <= entries[entries.length - 1].index) {
          entries = entries.slice(0, Math.max(0, first - entries[0].index));
        }
        entries = entries.length === 0 ? rd.entries : entries.concat(rd.entries);
      }
      if (rd.hardState) hardState = rd.hardState;
    }
    if (entries.length > 0) await this.#storeEntries(entries);
    if (hardState) {
      const termOrVote = hardState.term !== this.#lastHardState.term ||
        hardState.vote !== this.#lastHardState.vote;
      if (termOrVote) {
        await this.#withStorageTimeout(this.#stableStore.setState(hardState), "stable store write");
        this.#lastHardState = hardState;
        this.#hardStateWrittenAt = performance.now();
        this.#commitHintDirty = false;
      } else {
        // The commit index is only a hint for fast restarts: write it lazily.
        this.#lastHardState = { ...this.#lastHardState, commit: hardState.commit };
        this.#commitHintDirty = true;
        if (performance.now() - this.#hardStateWrittenAt > 1000) {
          await this.#withStorageTimeout(
            this.#stableStore.setState(this.#lastHardState),
            "stable store write",
          );
          this.#hardStateWrittenAt = performance.now();
          this.#commitHintDirty = false;
        }
      }
    }
  }

  async #storeEntries(entries: Entry[]): Promise<void> {
    const first = entries[0].index;
    const start = performance.now();
    if (first <= this.#storedLastIndex) {
      const storeFirst = await this.#logStore.firstIndex();
      await this.#logStore.deleteRange(Math.max(first, storeFirst), this.#storedLastIndex);
    }
    await this.#withStorageTimeout(this.#logStore.storeLogs(entries), "log write");
    this.#storedLastIndex = entries[entries.length - 1].index;
    this.#fsyncs++;
    this.#storeLogsSeconds.observe((performance.now() - start) / 1000);
  }

  /** A storage call that hangs must not freeze the cluster: step aside while it does. */
  async #withStorageTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = this.#config.storageTimeout;
    timer = setTimeout(() => {
      timer = undefined;
      log.error("{what} has taken more than {ms} ms; stepping down as leader", {
        what,
        ms: timeout,
      });
      if (this.#core.state === "leader") {
        try {
          this.#core.transferLeadership();
          this.#scheduleReady();
        } catch (e) {
          log.warn("could not hand over leadership: {error}", { error: String(e) });
        }
      }
    }, timeout);
    try {
      return await promise;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async #installSnapshot(meta: SnapshotMeta): Promise<void> {
    try {
      await this.#withSnapshotLock(() => this.#installSnapshotLocked(meta));
    } finally {
      this.#applyBlocked--; // taken when the Ready was queued
    }
    this.#drainApplyQueue();
    this.#releaseReads();
  }

  async #installSnapshotLocked(meta: SnapshotMeta): Promise<void> {
    if (this.#failed || this.#shutdown) throw new ShutdownError();
    {
      const info = (await this.#snapshotStore.list()).find((s) =>
        s.index === meta.index && s.term === meta.term
      );
      if (!info) {
        throw new StorageError(
          `snapshot ${meta.term}-${meta.index} to install is not in the store`,
        );
      }
      const source = await this.#snapshotStore.open(info.id);
      await this.#fsm.restore(source.data);
      // Entries queued for application before the snapshot are in it.
      this.#applyQueue = this.#applyQueue.map((item) =>
        Array.isArray(item) ? item.filter((e) => e.index > meta.index) : item
      );
      this.#skipPendingUpTo(meta.index);
      this.#appliedIndex = meta.index;
      this.#appliedConfiguration = {
        index: meta.configurationIndex,
        configuration: meta.configuration,
      };
      this.#lastSnapshot = { index: meta.index, term: meta.term, size: info.size };
      await this.#clearLog();
      this.#snapshotsInstalled++;
      log.info("installed snapshot {index} from the leader ({size} bytes)", {
        index: meta.index,
        size: info.size,
      });
      this.#emit({ type: "snapshot", index: meta.index, term: meta.term, size: info.size });
    }
  }

  #releasePersistWaiters(): void {
    if (this.#persistWaiters.length === 0) return;
    const done = this.#persistWaiters.filter((w) => w.seq <= this.#lastAdvancedSeq);
    this.#persistWaiters = this.#persistWaiters.filter((w) => w.seq > this.#lastAdvancedSeq);
    for (const w of done) w.resolve();
  }

  /** Apply committed entries in order, unless a snapshot restore is under way. */
  #drainApplyQueue(): void {
    while (this.#applyQueue.length > 0 && this.#applyBlocked === 0) {
      const item = this.#applyQueue.shift()!;
      if (Array.isArray(item)) this.#applyEntries(item);
    }
    this.#releaseReads();
    this.#maybeAutoSnapshot();
  }

  #applyEntries(entries: Entry[]): void {
    if (entries.length === 0) return;
    const start = performance.now();
    let batch: FSMEntry[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      let results: R[];
      if (this.#fsm.applyBatch) {
        results = this.#fsm.applyBatch(batch);
      } else {
        results = new Array(batch.length);
        for (let i = 0; i < batch.length; i++) results[i] = this.#fsm.apply(batch[i]);
      }
      for (let i = 0; i < batch.length; i++) {
        this.#settle(batch[i].index, batch[i].term, results[i]);
      }
      batch = [];
    };
    try {
      for (const e of entries) {
        if (e.index <= this.#appliedIndex) continue;
        if (e.type === EntryType.Normal) {
          batch.push(e); // an Entry is an FSMEntry: no copy on the hot path
        } else {
          flush();
          if (e.type === EntryType.Configuration) {
            this.#appliedConfiguration = {
              index: e.index,
              configuration: decodeConfiguration(e.data),
            };
          }
          this.#settle(e.index, e.term, undefined as R);
        }
        this.#appliedIndex = e.index;
      }
      flush();
    } catch (e) {
      this.#fail(e as Error, "applying to the FSM");
      return;
    }
    this.#applySeconds.observe((performance.now() - start) / 1000);
  }

  #settle(index: number, term: number, response: R): void {
    const p = this.#pendingApplies.get(index);
    if (!p) return;
    this.#pendingApplies.delete(index);
    if (p.deadline !== Infinity) this.#deadlines--;
    if (p.term !== term) {
      p.reject(
        new LeadershipLostError(
          "not_committed",
          `entry ${index} was overwritten by a newer leader`,
        ),
      );
      return;
    }
    this.#commitSeconds.observe((performance.now() - p.start) / 1000);
    p.resolve(
      p.kind === "apply" ? { index, term, response } : { index, term, response: undefined },
    );
  }

  #checkDeadlines(): void {
    if (this.#deadlines <= 0) return;
    const now = performance.now();
    for (const [index, p] of this.#pendingApplies) {
      if (p.deadline <= now) {
        this.#pendingApplies.delete(index);
        this.#deadlines--;
        const outcome = index <= this.#core.commitIndex ? "committed" : "unknown";
        p.reject(new TimeoutError("apply", Math.round(now - p.start), outcome));
      }
    }
    for (const [id, p] of this.#pendingReads) {
      if (p.deadline <= now) {
        this.#pendingReads.delete(id);
        this.#deadlines--;
        p.reject(new TimeoutError("read", 0, "not_committed"));
      }
    }
    let kept = 0;
    for (const p of this.#readsAwaitingApply) {
      if (p.deadline <= now) {
        this.#deadlines--;
        p.reject(new TimeoutError("read", 0, "not_committed"));
      } else this.#readsAwaitingApply[kept++] = p;
    }
    this.#readsAwaitingApply.length = kept;
  }

  #checkTransfers(): void {
    if (this.#transferWaiters.length === 0) return;
    const now = performance.now();
    const stillLeading = this.#core.state === "leader";
    const aborted = stillLeading && this.#core.leadTransferee === "";
    const kept = [];
    for (const w of this.#transferWaiters) {
      if (!stillLeading) w.resolve();
      else if (aborted) {
        w.reject(
          new LeadershipTransferError("the target did not take over within an election timeout"),
        );
      } else if (w.deadline <= now) {
        w.reject(new TimeoutError("leadershipTransfer", 0, "not_committed"));
      } else kept.push(w);
    }
    this.#transferWaiters = kept;
  }

  #checkHeartbeats(): void {
    if (this.#core.state !== "leader") return;
    const window = Math.ceil(this.#config.electionTimeout / this.#tickMs);
    const limit = this.#core.ticks - window;
    if (this.#core.ticks - this.#leaderSinceTick < window) return;
    for (const [id, pr] of this.#core.progress()) {
      const failing = pr.lastHeardTick < limit;
      if (failing && !this.#failedHeartbeats.has(id)) {
        this.#failedHeartbeats.add(id);
        const lastContact = Number.isFinite(pr.lastHeardTick)
          ? Date.now() - (this.#core.ticks - pr.lastHeardTick) * this.#tickMs
          : 0;
        this.#emit({ type: "heartbeat_failed", id, lastContact });
      } else if (!failing) {
        this.#failedHeartbeats.delete(id);
      }
    }
  }

  /** Track addresses of every server ever in a configuration, and report membership changes. */
  #noteConfiguration(): void {
    const latest = this.#core.latestConfiguration();
    for (const s of latest.configuration.servers) this.#addresses.set(s.id, s.address);
    if (latest.index === this.#lastConfigIndexSeen) return;
    const before = new Map(this.#lastConfigSeen.servers.map((s) => [s.id, s]));
    const after = new Map(latest.configuration.servers.map((s) => [s.id, s]));
    this.#lastConfigIndexSeen = latest.index;
    this.#lastConfigSeen = latest.configuration;
    for (const [id, s] of after) {
      const old = before.get(id);
      if (!old) this.#emit({ type: "peer", id, address: s.address, change: "added" });
      else if (old.suffrage !== "voter" && s.suffrage === "voter") {
        this.#emit({ type: "peer", id, address: s.address, change: "promoted" });
      } else if (old.suffrage === "voter" && s.suffrage !== "voter") {
        this.#emit({ type: "peer", id, address: s.address, change: "demoted" });
      }
    }
    for (const [id, s] of before) {
      if (!after.has(id)) this.#emit({ type: "peer", id, address: s.address, change: "removed" });
    }
  }

  #emit(o: Observation): void {
    for (const { callback, filter } of this.#observers) {
      try {
        if (!filter || filter(o)) callback(o);
      } catch (e) {
        log.warn("an observer threw: {error}", { error: String(e) });
      }
    }
  }

  #armSnapshotTimer(): void {
    clearInterval(this.#snapshotTimer);
    this.#snapshotTimer = undefined;
    if (this.#config.snapshotInterval > 0) {
      this.#snapshotTimer = setInterval(
        () => this.#maybeAutoSnapshot(),
        this.#config.snapshotInterval,
      );
    }
  }

  /**
   * Checked after every apply batch; the interval timer retries a failed
   * automatic snapshot on an idle node.
   */
  #maybeAutoSnapshot(): void {
    if (this.#snapshotting || this.#shutdown || this.#failed || this.#restoreInProgress) return;
    const due = this.#appliedIndex - this.#lastSnapshot.index >= this.#config.snapshotThreshold;
    if (!due) return;
    this.#takeSnapshot().catch((e) =>
      log.warn("automatic snapshot failed: {error}", { error: String(e) })
    );
  }

  async #takeSnapshot(): Promise<SnapshotInfo> {
    this.#snapshotting = true;
    try {
      return await this.#withSnapshotLock(() => this.#takeSnapshotLocked());
    } finally {
      this.#snapshotting = false;
    }
  }

  async #takeSnapshotLocked(): Promise<SnapshotInfo> {
    if (this.#failed || this.#shutdown) throw new ShutdownError();
    if (this.#appliedIndex <= this.#lastSnapshot.index) {
      throw new InvalidStateError(
        `nothing new to snapshot: applied index ${this.#appliedIndex} is already in the snapshot at ${this.#lastSnapshot.index}`,
      );
    }
    {
      // Capture the FSM between applies so the snapshot matches the applied index.
      this.#applyBlocked++;
      let fsmSnapshot: FSMSnapshot;
      let meta: SnapshotMeta;
      try {
        const index = this.#appliedIndex;
        const term = this.#core.termAt(index);
        if (term === undefined) {
          throw new InvalidStateError(`term of applied index ${index} is unknown`);
        }
        const conf = this.#appliedConfiguration;
        meta = { index, term, configuration: conf.configuration, configurationIndex: conf.index };
        fsmSnapshot = await this.#fsm.snapshot();
      } finally {
        this.#applyBlocked--;
        this.#drainApplyQueue();
      }
      const info = await persistPrepared(fsmSnapshot, this.#snapshotStore, meta);
      if (meta.index > this.#lastSnapshot.index) {
        this.#lastSnapshot = { index: meta.index, term: meta.term, size: info.size };
      }
      this.#snapshotsTaken++;
      this.#core.snapshotTaken(meta);
      const target = Math.min(meta.index - this.#config.trailingLogs, this.#core.compactionFloor());
      if (target > 0) {
        this.#writeQueue.push({ kind: "compact", index: target });
        if (!this.#writing) void this.#writeLoop();
      }
      log.info("snapshot taken at {index} ({size} bytes)", { index: meta.index, size: info.size });
      this.#emit({ type: "snapshot", index: meta.index, term: meta.term, size: info.size });
      return info;
    }
  }

  /** Delete the whole stored log (a snapshot replaced it). */
  async #clearLog(): Promise<void> {
    const last = await this.#logStore.lastIndex();
    if (last > 0) await this.#logStore.deleteRange(await this.#logStore.firstIndex(), last);
    this.#storedLastIndex = 0;
  }

  async #compactLog(index: number): Promise<void> {
    const first = await this.#logStore.firstIndex();
    const upTo = Math.min(index, this.#storedLastIndex, this.#core.appliedIndex);
    if (first === 0 || upTo < first) return;
    await this.#logStore.deleteRange(first, upTo);
    this.#core.compact(Math.min(upTo, this.#core.snapshotMeta?.index ?? 0));
    log.debug("log compacted up to {index}", { index: upTo });
  }

  #fail(error: Error, during: string): void {
    if (this.#failed) return;
    this.#failed = error;
    log.error("raft {id} stopped after an error while {during}: {error}", {
      id: this.id,
      during,
      error: error.stack ?? String(error),
    });
    if (this.#core.state === "leader") {
      // Try to hand over; our messages still go out even though our disk failed.
      try {
        this.#core.transferLeadership();
        while (this.#core.hasReady()) {
          for (const m of this.#core.ready().messages) {
            if (m.type === "timeout_now") this.#sendMessage(m);
          }
        }
      } catch {
        // No voter to hand over to: followers will time out.
      }
    }
    clearInterval(this.#tickTimer);
    clearInterval(this.#snapshotTimer);
    this.#closeReadyChannel();
    const err = new StorageError(`raft stopped after a failure while ${during}: ${error.message}`, {
      cause: error,
    });
    this.#rejectEverything(err);
    this.#state = "shutdown";
    void this.#transport.close().catch(() => {});
    this.#emit({ type: "state", state: "shutdown", term: this.#core.term });
  }

  #rejectEverything(error: Error): void {
    for (const p of this.#pendingApplies.values()) p.reject(error);
    this.#pendingApplies.clear();
    for (const p of this.#pendingReads.values()) p.reject(error);
    this.#pendingReads.clear();
    for (const p of this.#readsAwaitingApply) p.reject(error);
    this.#readsAwaitingApply = [];
    for (const w of this.#transferWaiters) w.reject(error);
    this.#transferWaiters = [];
    for (const w of this.#persistWaiters) w.reject(error);
    this.#persistWaiters = [];
    this.#deadlines = 0;
  }
}

function typeOf(value: unknown): string {
  return value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : typeof value === "object"
    ? (value as object).constructor?.name ?? "object"
    : typeof value;
}

/** Ticks: the core counts time in ticks of half a heartbeat interval. */
function coreOptionsFor(
  config: ResolvedConfig,
  tickMs?: number,
): { tickMs: number; coreOptions: CoreOptions } {
  const tick = tickMs ?? Math.max(1, Math.floor(config.heartbeatInterval / 2));
  const heartbeatTicks = Math.max(1, Math.round(config.heartbeatInterval / tick));
  const electionTicks = Math.max(heartbeatTicks * 2, Math.round(config.electionTimeout / tick));
  // Leave a margin for clock drift between leader and followers (10%, at least 2 ticks).
  const leaseTicks = Math.max(
    1,
    Math.min(
      electionTicks - 2,
      Math.floor(electionTicks * 0.9),
      Math.floor(config.leaderLeaseTimeout / tick),
    ),
  );
  return {
    tickMs: tick,
    coreOptions: {
      id: config.id,
      electionTicks,
      heartbeatTicks,
      leaseTicks,
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      maxAppendEntries: config.maxAppendEntries,
      maxAppendBytes: config.maxAppendBytes,
      maxInflight: config.maxInflightAppends,
      catchupMargin: config.catchupMargin,
      autoPromoteNonvoters: config.autoPromoteNonvoters,
      maxApplyBatch: config.maxApplyBatch,
      random: config.random,
    },
  };
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

async function persistFsmSnapshot<R>(
  fsm: FSM<R>,
  store: SnapshotStore,
  meta: SnapshotMeta,
): Promise<SnapshotInfo> {
  return await persistPrepared(await fsm.snapshot(), store, meta);
}

async function persistPrepared(
  fsmSnapshot: FSMSnapshot,
  store: SnapshotStore,
  meta: SnapshotMeta,
): Promise<SnapshotInfo> {
  try {
    const sink = await store.create(meta);
    try {
      await fsmSnapshot.persist(sink);
      return await sink.close();
    } catch (e) {
      await sink.cancel();
      throw e;
    }
  } finally {
    fsmSnapshot.release();
  }
}
