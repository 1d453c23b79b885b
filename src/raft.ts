/**
 * The public Raft node: drives the pure core with timers, storage, the
 * transport and the FSM, and turns its work into Promises.
 *
 * This file is the facade; the work is done by collaborators in `src/node/`,
 * one concern each (after hashicorp/raft's layout): pending operations and
 * their deadlines (`pending.ts`), the write pipeline (`write_pipeline.ts`),
 * the FSM runner (`fsm_runner.ts`), snapshots (`snapshots.ts`), observers
 * (`observers.ts`), starting and recovery (`recovery.ts`), all on one
 * injectable clock (`clock.ts`, `timers.ts`).
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
import { checkConfiguration, type ConfigurationChange } from "./core/membership.ts";
import { RaftCore } from "./core/raft_core.ts";
import {
  type Configuration,
  EntryType,
  type RaftState,
  type ServerAddress,
  type ServerId,
} from "./core/types.ts";
import {
  AbortError,
  ConfigurationError,
  InvalidStateError,
  type LeaderInfo,
  NotLeaderError,
  ShutdownError,
  StorageError,
} from "./errors.ts";
import type { FSM } from "./fsm.ts";
import { HistogramRecorder } from "./metrics.ts";
import { type Clock, RealClock } from "./node/clock.ts";
import type { NodeContext } from "./node/context.ts";
import { FsmRunner } from "./node/fsm_runner.ts";
import { Observers } from "./node/observers.ts";
import { ReadyLoop } from "./node/ready_loop.ts";
import { operationDeadline, PendingOperations } from "./node/pending.ts";
import {
  hasExistingState,
  loadStoredState,
  recoverCluster,
  type StoredState,
} from "./node/recovery.ts";
import { Snapshots } from "./node/snapshots.ts";
import { coreOptionsFor } from "./node/timing.ts";
import { NodeTimers } from "./node/timers.ts";
import type {
  ApplyResult,
  IndexResult,
  MembershipOptions,
  Observation,
  OperationOptions,
  RaftStats,
  ReadOptions,
} from "./node/types.ts";
import { WritePipeline } from "./node/write_pipeline.ts";
import type { LogStore, SnapshotInfo, SnapshotStore, StableStore } from "./storage/types.ts";
import type { Transport } from "./transport/types.ts";

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
  /**
   * Where time and scheduling come from: timers, deadlines, leases and the
   * Ready loop's macrotasks. Default: a {@linkcode RealClock} the node creates
   * and closes on `shutdown()`. A clock passed here (e.g. a simulation's
   * virtual clock) is not closed by the node.
   */
  clock?: Clock;
}

export type {
  ApplyResult,
  IndexResult,
  MembershipOptions,
  Observation,
  OperationOptions,
  RaftStats,
  ReadOptions,
} from "./node/types.ts";

function checkId(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
}

function isClock(value: unknown): value is Clock {
  const c = value as Partial<Record<keyof Clock, unknown>> | null;
  return typeof c === "object" && c !== null &&
    (["now", "wallClock", "setTimeout", "clearTimeout", "queueTask", "close"] as const).every(
      (k) => typeof c[k] === "function",
    );
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
  #transport: Transport;
  #clock: Clock;
  #ownsClock: boolean;
  #timers: NodeTimers;
  #tickMs: number;

  #shutdown = false;
  #failed: Error | undefined;

  #pending: PendingOperations;
  #pipeline: WritePipeline;
  #runner: FsmRunner<R>;
  #snapshots: Snapshots<R>;
  #observers = new Observers();
  #loop: ReadyLoop<R>;

  #applySeconds = new HistogramRecorder();
  #commitSeconds = new HistogramRecorder();

  private constructor(
    config: ResolvedConfig,
    fsm: FSM<R>,
    stores: RaftStores,
    core: RaftCore,
    tickMs: number,
    stored: StoredState,
  ) {
    this.id = config.id;
    this.#config = config;
    this.#transport = stores.transport;
    this.#core = core;
    this.#tickMs = tickMs;
    this.#ownsClock = stores.clock === undefined;
    this.#clock = stores.clock ?? new RealClock();
    this.#timers = new NodeTimers(this.#clock);
    const node: NodeContext = {
      id: config.id,
      core,
      clock: this.#clock,
      timers: this.#timers,
      config: () => this.#config,
      failure: () => this.#failed,
      isShutdown: () => this.#shutdown,
      fail: (error, during) => this.#fail(error, during),
      scheduleReady: () => this.#loop.schedule(),
      notLeader: () => this.#notLeader(),
      emit: (o) => this.#observers.emit(o),
    };
    this.#pending = new PendingOperations(this.#clock, this.#commitSeconds, () => core.commitIndex);
    this.#runner = new FsmRunner(
      fsm,
      {
        settle: (index, term, response) => this.#pending.settle(index, term, response),
        drained: () => {
          this.#pending.releaseReads(this.#runner.appliedIndex);
          this.#snapshots.maybeAutoSnapshot();
        },
        fail: (error, during) => this.#fail(error, during),
        exclusive: (fn) => this.#snapshots.exclusive(fn),
      },
      this.#clock,
      this.#applySeconds,
    );
    this.#pipeline = new WritePipeline(node, stores, {
      installSnapshot: (meta) => this.#snapshots.install(meta),
      snapshotInstalled: (meta) => this.#snapshots.noteInstalled(meta),
      persisted: (seq) => {
        this.#pending.releasePersisted(seq);
        this.#loop.process();
      },
    }, { lastIndex: stored.lastIndex, hardState: stored.hardState });
    this.#snapshots = new Snapshots(node, {
      fsm,
      store: stores.snapshotStore,
      transport: stores.transport,
      runner: this.#runner,
      pipeline: this.#pipeline,
      pending: this.#pending,
    });
    this.#loop = new ReadyLoop(node, {
      transport: stores.transport,
      pending: this.#pending,
      pipeline: this.#pipeline,
      runner: this.#runner,
      snapshots: this.#snapshots,
      observers: this.#observers,
    }, tickMs);
    this.#runner.startFrom(core.appliedIndex, stored.snapshot?.meta);
    if (stored.snapshot) {
      const { meta, size } = stored.snapshot;
      this.#snapshots.startFrom({ index: meta.index, term: meta.term, size });
    }
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
    if (stores.clock !== undefined && !isClock(stores.clock)) {
      throw new TypeError(
        `stores.clock must implement Clock (now, wallClock, setTimeout, clearTimeout, queueTask, close), got ${
          typeOf(stores.clock)
        }`,
      );
    }
    const stored = await loadStoredState(fsm, stores);
    const { tickMs, coreOptions } = coreOptionsFor(resolved);
    const core = new RaftCore(coreOptions, {
      hardState: stored.hardState,
      snapshot: stored.snapshot?.meta,
      entries: stored.entries,
    });
    const raft = new Raft(resolved, fsm, stores, core, tickMs, stored);
    raft.#loop.noteConfiguration();
    try {
      await stores.transport.start(raft.#loop.handler());
    } catch (e) {
      if (raft.#ownsClock) raft.#clock.close();
      throw e;
    }
    raft.#loop.start();
    raft.#snapshots.armTimer();
    log.info(
      "raft {id} started: term {term}, last index {last}, commit {commit}, snapshot {snap}",
      {
        id: resolved.id,
        term: core.term,
        last: core.lastIndex,
        commit: core.commitIndex,
        snap: stored.snapshot?.meta.index ?? 0,
      },
    );
    raft.#loop.schedule();
    return raft;
  }

  /** Whether the stores hold any Raft state (a term, a log or a snapshot). */
  static async hasExistingState(stores: Omit<RaftStores, "transport">): Promise<boolean> {
    return await hasExistingState(stores);
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
    await recoverCluster(validateConfig(config), fsm, stores, configuration);
  }

  /**
   * Write the first configuration of a brand-new cluster. Throws
   * {@linkcode InvalidStateError} when this node already has state.
   */
  async bootstrapCluster(configuration: Configuration): Promise<void> {
    this.#checkRunning();
    const conf = checkConfiguration(configuration);
    this.#core.bootstrap(conf);
    this.#loop.noteConfiguration();
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
    this.#timers.cancelAll();
    this.#snapshots.stopTimer();
    this.#loop.state = "shutdown";
    try {
      await this.#transport.close();
    } catch (e) {
      log.warn("closing transport failed: {error}", { error: String(e) });
    }
    // A snapshot being taken or installed, and the write in flight, may finish (not forever).
    await this.#settleWithin(
      this.#snapshots.settled.then(() => this.#pipeline.idle()),
      this.#config.storageTimeout,
    );
    if (!this.#failed) {
      try {
        // Only the commit index of a persisted Ready: its entries are on disk.
        await this.#pipeline.flushCommitHint();
      } catch (e) {
        log.warn("writing the commit hint at shutdown failed: {error}", { error: String(e) });
      }
    }
    this.#pending.rejectAll(new ShutdownError());
    this.#observers.emit({ type: "state", state: "shutdown", term: this.#core.term });
    if (this.#ownsClock) this.#clock.close();
  }

  /** Wait for `promise` at most `ms`; the timer goes as soon as either settles. */
  async #settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
    let handle: unknown;
    const timeout = new Promise<void>((resolve) => {
      handle = this.#clock.setTimeout(resolve, ms);
    });
    try {
      await Promise.race([promise.catch(() => {}), timeout]);
    } finally {
      this.#clock.clearTimeout(handle);
    }
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
      const deadline = operationDeadline(this.#clock, options, "leadershipTransfer");
      this.#core.transferLeadership(id);
      const promise = this.#pending.addTransfer(deadline);
      this.#loop.schedule();
      return promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Take a snapshot now and compact the log (manual compaction). */
  async snapshot(): Promise<SnapshotInfo> {
    this.#checkRunning();
    if (this.#snapshots.taking) throw new InvalidStateError("a snapshot is already being taken");
    this.#snapshots.checkSomethingNew();
    return await this.#snapshots.take();
  }

  /**
   * Replace the cluster's state with a user snapshot (leader only; operator
   * action). The state takes index `lastIndex + 1` so every follower installs
   * it. Resolves once a quorum holds it. If the leader fails before that,
   * the restore may be lost or partial, as with hashicorp/raft's Restore.
   */
  async restore(data: AsyncIterable<Uint8Array>, options?: OperationOptions): Promise<void> {
    this.#checkRunning();
    if (this.#snapshots.restoring) throw new InvalidStateError("a restore is already in progress");
    await this.barrier(options);
    await this.#snapshots.restore(data);
    this.#loop.schedule();
    await this.barrier(options);
  }

  /**
   * Be told of state changes, leader changes, membership changes, failed
   * heartbeats and snapshots. Returns a function that unsubscribes.
   */
  observe(callback: (o: Observation) => void, filter?: (o: Observation) => boolean): () => void {
    if (typeof callback !== "function") {
      throw new TypeError(`observe: callback must be a function, got ${typeOf(callback)}`);
    }
    return this.#observers.observe(callback, filter);
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
    if (!this.#shutdown && !this.#failed) this.#snapshots.armTimer();
  }

  // --------------------------------------------------------------- getters

  /** Role of the node. */
  get state(): RaftState {
    return this.#shutdown || this.#failed ? "shutdown" : this.#core.state;
  }

  /** The leader as far as this node knows. */
  get leader(): LeaderInfo | undefined {
    return this.#loop.leader();
  }

  /** `Date.now()` of the last message from the leader (now, on the leader). */
  get lastContact(): number | undefined {
    if (this.#core.state === "leader") return this.#clock.wallClock();
    const at = this.#loop.lastContactAt;
    return at === undefined ? undefined : this.#clock.wallClock() - (this.#clock.now() - at);
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
    return this.#runner.appliedIndex;
  }

  /** Index of the newest snapshot. */
  get lastSnapshotIndex(): number {
    return this.#snapshots.last.index;
  }

  /** Counters, gauges and latency histograms. */
  stats(): RaftStats {
    const conf = this.#core.latestConfiguration();
    const last = this.#snapshots.last;
    const contactAt = this.#loop.lastContactAt;
    return {
      id: this.id,
      state: this.state,
      term: this.#core.term,
      leaderId: this.#core.leader || undefined,
      lastLogIndex: this.#core.lastIndex,
      lastLogTerm: this.#core.lastTerm,
      commitIndex: this.#core.commitIndex,
      appliedIndex: this.#runner.appliedIndex,
      lastSnapshotIndex: last.index,
      lastSnapshotTerm: last.term,
      lastSnapshotSize: last.size,
      lastContactMs: this.#core.state === "leader"
        ? 0
        : contactAt === undefined
        ? undefined
        : this.#clock.now() - contactAt,
      numPeers: conf.configuration.servers.filter((s) => s.id !== this.id).length,
      configurationIndex: conf.index,
      fsyncs: this.#pipeline.fsyncs,
      storeLogsSeconds: this.#pipeline.storeLogsSeconds.snapshot(),
      applySeconds: this.#applySeconds.snapshot(),
      commitSeconds: this.#commitSeconds.snapshot(),
      messagesSent: this.#loop.messagesSent,
      messagesReceived: this.#loop.messagesReceived,
      snapshotsTaken: this.#snapshots.taken,
      snapshotsInstalled: this.#snapshots.installed,
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
      if (this.#snapshots.restoring) {
        throw new InvalidStateError("a restore is in progress; retry after it completes");
      }
      const deadline = operationDeadline(this.#clock, options, op);
      options?.signal?.throwIfAborted();
      const { index, term } = this.#core.propose([data], type);
      const kind = type === EntryType.Normal ? "apply" : "index";
      const promise = this.#pending.addApply(index, term, kind, deadline, options?.signal, op);
      this.#loop.schedule();
      return promise;
    } catch (e) {
      return Promise.reject(asAbortError(e, op));
    }
  }

  async #changeMembership(
    change: ConfigurationChange,
    op: string,
    options: MembershipOptions | undefined,
  ): Promise<IndexResult> {
    this.#checkRunning();
    const deadline = operationDeadline(this.#clock, options, op);
    const prevIndex = options?.prevIndex ?? 0;
    if (!Number.isInteger(prevIndex) || prevIndex < 0) {
      throw new RangeError(
        `${op}: options.prevIndex must be a non-negative integer, got ${prevIndex}`,
      );
    }
    if (this.#snapshots.restoring) {
      throw new InvalidStateError("a restore is in progress; retry after it completes");
    }
    // A change right after an election or another change waits (at most 10 s
    // or the timeout) for the previous one to commit instead of failing at once.
    const giveUp = Math.min(deadline, this.#clock.now() + 10_000);
    for (;;) {
      options?.signal?.throwIfAborted();
      try {
        const { index, term } = this.#core.proposeConfigurationChange(change, prevIndex);
        this.#loop.noteConfiguration();
        const promise = this.#pending.addApply(index, term, "index", deadline, options?.signal, op);
        this.#loop.schedule();
        await promise;
        return { index };
      } catch (e) {
        const retriable = e instanceof ConfigurationError && prevIndex === 0 &&
          /in progress|not committed an entry/.test(e.message);
        if (!retriable || this.#clock.now() + this.#tickMs > giveUp) throw e;
        await this.#timers.sleep(this.#tickMs);
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
      const deadline = operationDeadline(this.#clock, options, op);
      options?.signal?.throwIfAborted();
      const id = this.#pending.nextReadId();
      this.#core.readIndex(id, lease);
      const promise = this.#pending.addRead(id, waitApply, deadline, options?.signal, op);
      this.#loop.schedule();
      return promise;
    } catch (e) {
      return Promise.reject(asAbortError(e, op));
    }
  }

  #waitPersisted(): Promise<void> {
    // Everything produced so far goes into the next Ready at the latest.
    const promise = this.#pending.addPersistWaiter(this.#loop.lastReadySeq + 1);
    this.#loop.schedule();
    return promise;
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
            if (m.type === "timeout_now") this.#loop.send(m);
          }
        }
      } catch {
        // No voter to hand over to: followers will time out.
      }
    }
    this.#timers.cancelAll();
    this.#snapshots.stopTimer();
    if (this.#ownsClock) this.#clock.close();
    const err = new StorageError(`raft stopped after a failure while ${during}: ${error.message}`, {
      cause: error,
    });
    this.#pending.rejectAll(err);
    this.#loop.state = "shutdown";
    void this.#transport.close().catch(() => {});
    this.#observers.emit({ type: "state", state: "shutdown", term: this.#core.term });
  }
}

/** A DOMException from `signal.throwIfAborted()` becomes our {@linkcode AbortError}. */
function asAbortError(e: unknown, op: string): unknown {
  if (e instanceof DOMException && e.name === "AbortError") {
    return new AbortError(op, "not_committed", { cause: e });
  }
  return e;
}
