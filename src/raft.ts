/**
 * The public Raft node: drives the pure core with timers, storage, the
 * transport and the FSM, and turns its work into Promises.
 *
 * This file is the facade; the work is done by collaborators in `src/node/`,
 * one concern each (after hashicorp/raft's layout): pending operations and
 * their deadlines (`pending.ts`), the write pipeline (`write_pipeline.ts`),
 * the FSM runner (`fsm_runner.ts`), snapshots (`snapshots.ts`), observers
 * (`observers.ts`), starting and recovery (`recovery.ts`), all on one
 * injectable clock (`src/platform/clock.ts`, `timers.ts`).
 *
 * @module
 */

import {
  type Config,
  type ReloadableConfig,
  type ResolvedConfig,
  resolveReload,
  validateConfig,
} from "./config.ts";
import { checkConfiguration, type ConfigurationChange } from "./core/membership.ts";
import { describeValue } from "./describe_value.ts";
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
import { type Clock, RealClock } from "./platform/clock.ts";
import type { NodeContext } from "./node/context.ts";
import { FsmRunner } from "./node/fsm_runner.ts";
import { LeaseClock } from "./node/lease.ts";
import { LogLoader } from "./node/log_loader.ts";
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
  AddServerOptions,
  ApplyResult,
  IndexResult,
  MembershipOptions,
  Observation,
  OperationOptions,
  RaftStats,
  ReadOptions,
} from "./node/types.ts";
import { WritePipeline } from "./node/write_pipeline.ts";
import { encodeRestoreEntries, readPieces, RESTORE_HEADER_BYTES } from "./node/restore_chunks.ts";
import type { LogStore, SnapshotInfo, SnapshotStore, StableStore } from "./storage/types.ts";
import type { Transport } from "./transport/types.ts";

const EMPTY = new Uint8Array(0);
/** Most bytes of state in one entry of a restore. */
const RESTORE_PIECE_BYTES = 64 * 1024;

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
  AddServerOptions,
  ApplyResult,
  IndexResult,
  MembershipOptions,
  Observation,
  OperationOptions,
  RaftStats,
  ReadOptions,
} from "./node/types.ts";

function checkUpdateAddress(options: AddServerOptions | undefined, op: string): boolean {
  const v = options?.updateAddress;
  if (v !== undefined && typeof v !== "boolean") {
    throw new TypeError(`${op}: options.updateAddress must be a boolean, got ${typeOf(v)}`);
  }
  return v === true;
}

function checkId(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${describeValue(value)}`);
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
  /** An applied configuration has listed this server (so it can be removed). */
  #wasMember = false;
  #removed = false;
  /** An operator's restore is being read or committed: other proposals wait. */
  #restoring = false;

  #pending: PendingOperations;
  #pipeline: WritePipeline;
  #runner: FsmRunner<R>;
  #snapshots: Snapshots<R>;
  #observers: Observers;
  #loader: LogLoader;
  #loop: ReadyLoop<R>;
  #lease: LeaseClock;

  #applySeconds = new HistogramRecorder();
  #commitSeconds = new HistogramRecorder();

  private constructor(
    config: ResolvedConfig,
    fsm: FSM<R>,
    stores: RaftStores,
    core: RaftCore,
    timing: { tickMs: number; leaseMs: number },
    stored: StoredState,
  ) {
    const { tickMs, leaseMs } = timing;
    this.id = config.id;
    this.#config = config;
    this.#transport = stores.transport;
    this.#core = core;
    this.#tickMs = tickMs;
    this.#ownsClock = stores.clock === undefined;
    this.#clock = stores.clock ?? new RealClock();
    this.#timers = new NodeTimers(this.#clock);
    this.#observers = new Observers(config.logger);
    const node: NodeContext = {
      id: config.id,
      core,
      clock: this.#clock,
      timers: this.#timers,
      log: config.logger,
      config: () => this.#config,
      failure: () => this.#failed,
      isShutdown: () => this.#shutdown,
      fail: (error, during) => this.#fail(error, during),
      scheduleReady: () => this.#loop.schedule(),
      notLeader: () => this.#notLeader(),
      emit: (o) => this.#observers.emit(o),
    };
    this.#lease = new LeaseClock(this.#clock, leaseMs);
    this.#pending = new PendingOperations(
      this.#clock,
      this.#commitSeconds,
      () => core.commitIndex,
      {
        holds: (round) => core.state === "leader" && this.#lease.holds(round),
        reissue: (id) => {
          try {
            core.readIndex(id, false);
          } catch (e) {
            return e as Error;
          }
          this.#loop.schedule();
          return undefined;
        },
      },
    );
    this.#runner = new FsmRunner(
      fsm,
      {
        settle: (index, term, response) => this.#pending.settle(index, term, response),
        drained: () => {
          const applied = this.#runner.appliedIndex;
          this.#pending.releaseReads(applied);
          this.#noteMembership();
          this.#snapshots.maybeAutoSnapshot();
          // Room for more committed entries (the core hands out maxAppendBytes at a time).
          if (core.appliedTo(applied)) this.#loop.schedule();
        },
        fail: (error, during) => this.#fail(error, during),
        exclusive: (fn) => this.#snapshots.exclusive(fn),
      },
      this.#clock,
      this.#applySeconds,
      config.logger,
    );
    this.#pipeline = new WritePipeline(node, stores, {
      installSnapshot: (meta) => this.#snapshots.install(meta),
      snapshotInstalled: (meta) => this.#snapshots.noteInstalled(meta),
      persisted: (seq) => {
        this.#pending.releasePersisted(seq);
        // Not right here: the pipeline first finishes this batch, so the next
        // Ready's write (and fdatasync) starts before its messages are sent.
        this.#loop.scheduleSoon();
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
    this.#loader = new LogLoader(node, stores.logStore);
    this.#loop = new ReadyLoop(node, {
      transport: stores.transport,
      pending: this.#pending,
      pipeline: this.#pipeline,
      runner: this.#runner,
      snapshots: this.#snapshots,
      observers: this.#observers,
      lease: this.#lease,
      loader: this.#loader,
    }, tickMs);
    this.#runner.startFrom(core.appliedIndex, stored.snapshot?.meta);
    this.#wasMember = this.#runner.appliedConfiguration.configuration.servers
      .some((s) => s.id === this.id);
    if (stored.snapshot) {
      const { meta, size } = stored.snapshot;
      this.#snapshots.startFrom({ index: meta.index, term: meta.term, size });
    }
  }

  // ------------------------------------------------------------- lifecycle

  /**
   * Start a node on its stores: restores the newest valid snapshot into the
   * FSM, loads the log, applies what is known committed, and starts the
   * transport and timers. A new cluster then needs {@linkcode Raft.bootstrapCluster}
   * on one server (or on every server, with the same configuration).
   *
   * @throws {TypeError} when `config`, `fsm` or `stores` is missing something or has a value of the
   * wrong type (the message names the field and shows what was given).
   * @throws {RangeError} when a number in `config` is out of range or two timings contradict.
   * @throws {CorruptionError} when every stored snapshot fails its checks.
   * @throws {StorageError} when the stores cannot be read.
   * @throws {TransportError} when the transport cannot start (e.g. it is closed).
   *
   * @example A node on disk, reachable over TCP
   * ```ts
   * import { Raft } from "./raft.ts";
   * import { FileLogStore, FileSnapshotStore, FileStableStore } from "./storage/mod.ts";
   * import { TcpTransport } from "./transport/mod.ts";
   * import { RecordingFSM } from "./testing/recording_fsm.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const transport = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * const logStore = await FileLogStore.open(`${dir}/log`);
   * const stableStore = await FileStableStore.open(`${dir}/stable`);
   * const raft = await Raft.create({ id: "n1" }, new RecordingFSM(), {
   *   logStore,
   *   stableStore,
   *   snapshotStore: await FileSnapshotStore.open(`${dir}/snapshots`),
   *   transport,
   * });
   * await raft.bootstrapCluster({
   *   servers: [{ id: "n1", address: transport.localAddress, suffrage: "voter" }],
   * });
   * await raft.shutdown();
   * await logStore.close();
   * await stableStore.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
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
    const stored = await loadStoredState(fsm, stores, resolved.logger, {
      keepBytes: resolved.logCacheBytes,
    });
    const { tickMs, leaseMs, coreOptions } = coreOptionsFor(resolved);
    const core = new RaftCore(coreOptions, {
      hardState: stored.hardState,
      snapshot: stored.snapshot?.meta,
      log: stored.log,
    });
    const raft = new Raft(resolved, fsm, stores, core, { tickMs, leaseMs }, stored);
    raft.#loop.noteConfiguration();
    try {
      await stores.transport.start(raft.#loop.handler());
    } catch (e) {
      if (raft.#ownsClock) raft.#clock.close();
      throw e;
    }
    raft.#loop.start();
    raft.#snapshots.armTimer();
    resolved.logger.info(
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

  /**
   * Whether the stores hold any Raft state (a term, a log or a snapshot):
   * `false` means a brand-new server, to bootstrap or to add to a cluster.
   *
   * @throws {StorageError} when a store cannot be read.
   *
   * @example
   * ```ts
   * import { Raft } from "./raft.ts";
   * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "./storage/mod.ts";
   * const stores = {
   *   logStore: new MemoryLogStore(),
   *   stableStore: new MemoryStableStore(),
   *   snapshotStore: new MemorySnapshotStore(),
   * };
   * console.log(await Raft.hasExistingState(stores)); // false
   * await stores.stableStore.setState({ term: 1, vote: "", commit: 0 });
   * console.log(await Raft.hasExistingState(stores)); // true
   * ```
   */
  static async hasExistingState(stores: Omit<RaftStores, "transport">): Promise<boolean> {
    return await hasExistingState(stores);
  }

  /**
   * Operator recovery after losing quorum (hashicorp's RecoverCluster, the
   * peers.json case): on a stopped node's stores, replay every stored entry
   * into the FSM, write a snapshot carrying `configuration`, and drop the log.
   * Start the node afterwards; do this on every surviving server with the
   * same configuration. Entries that were never committed may be kept.
   *
   * @throws {TypeError} when `config` or `configuration` is malformed.
   * @throws {ConfigurationError} when `configuration` has no voter.
   * @throws {InvalidStateError} when the stores hold no state (nothing to recover).
   * @throws {CorruptionError} when every stored snapshot fails its checks.
   * @throws {StorageError} when the stores cannot be read or written.
   *
   * @example Restart the survivor of a three-node cluster alone
   * ```ts
   * import { formCluster, RecordingFSM } from "../testing.ts";
   * import { Raft } from "./raft.ts";
   *
   * const cluster = await formCluster(); // n1, n2, n3
   * await cluster.leader()!.apply(new TextEncoder().encode("kept"));
   * await cluster.shutdown(); // say n2 and n3 are lost for good
   * const { logStore, stableStore, snapshotStore } = cluster.node("n1");
   * const fsm = new RecordingFSM();
   * await Raft.recoverCluster({ id: "n1" }, fsm, { logStore, stableStore, snapshotStore }, {
   *   servers: [{ id: "n1", address: "n1", suffrage: "voter" }],
   * });
   * console.log(fsm.texts()); // ["kept"]
   * ```
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
   * Write the first configuration of a brand-new cluster. Resolves once it is
   * on disk; the node then elects itself (a single voter) or campaigns with
   * the others.
   *
   * @throws {InvalidStateError} when this node already has state (bootstrap happens once).
   * @throws {ConfigurationError} when `configuration` has no voter.
   * @throws {TypeError} when `configuration` is malformed (the message names the server at fault).
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { Raft } from "./raft.ts";
   * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "./storage/mod.ts";
   * import { MemoryNetwork } from "./transport/mod.ts";
   * import { RecordingFSM } from "./testing/recording_fsm.ts";
   *
   * const raft = await Raft.create({ id: "n1" }, new RecordingFSM(), {
   *   logStore: new MemoryLogStore(),
   *   stableStore: new MemoryStableStore(),
   *   snapshotStore: new MemorySnapshotStore(),
   *   transport: new MemoryNetwork().transport("n1"),
   * });
   * await raft.bootstrapCluster({ servers: [{ id: "n1", address: "n1", suffrage: "voter" }] });
   * await raft.bootstrapCluster({ servers: [{ id: "n1", address: "n1", suffrage: "voter" }] })
   *   .catch((e: Error) => console.log(e.name)); // InvalidStateError
   * await raft.shutdown();
   * ```
   */
  async bootstrapCluster(configuration: Configuration): Promise<void> {
    this.#checkRunning();
    const conf = checkConfiguration(configuration);
    this.#core.bootstrap(conf);
    this.#loop.noteConfiguration();
    await this.#waitPersisted();
  }

  /**
   * Stop the node: timers, transport, pending operations (writes in flight
   * reject with {@linkcode LeadershipLostError}, outcome `"committed"` or
   * `"unknown"`, since another leader may commit them; the rest with
   * {@linkcode ShutdownError}); waits for in-flight disk writes (at most
   * `storageTimeout`). Stores stay open (they belong to the caller).
   * Idempotent; never rejects (a failing transport close is logged).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * const pending = raft.barrier();
   * await raft.shutdown();
   * console.log(raft.state); // "shutdown"
   * await pending.catch((e: Error) => console.log(e.name)); // LeadershipLostError, unless it finished first
   * ```
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
      this.#config.logger.warn("closing transport failed: {error}", { error: String(e) });
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
        this.#config.logger.warn("writing the commit hint at shutdown failed: {error}", {
          error: String(e),
        });
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
   * `options.timeout` covers the whole commit, not just the enqueue.
   *
   * @throws {TypeError} when `data` is not a `Uint8Array`.
   * @throws {NotLeaderError} when this node is not the leader (nothing was appended; `leader` names
   * the one it knows, to retry there).
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped (shutdown, a disk
   * failure: the `cause`), before the entry was applied: `outcome` is `"not_committed"` (a newer
   * leader overwrote it), `"committed"` (it was committed; this node may not apply it) or
   * `"unknown"` (a new leader may still commit it: check before retrying a write that is not
   * idempotent).
   * @throws {TimeoutError} when `options.timeout` passed first: `outcome` is `"committed"` (it will be
   * applied) or `"unknown"`.
   * @throws {AbortError} when `options.signal` aborted first: `outcome` is `"not_committed"` (aborted
   * before it was proposed), `"committed"` or `"unknown"`.
   * @throws {LeadershipTransferError} while a leadership transfer is in progress (nothing was appended).
   * @throws {InvalidStateError} while a restore is in progress (nothing was appended).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down (nothing was appended).
   * @throws {StorageError} when the node stopped after a storage or state machine failure (nothing
   * was appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const { index, term, response } = await raft.apply(new TextEncoder().encode("x"), {
   *   timeout: 5000,
   * });
   * console.log(index > 0, term > 0, response); // true true 1
   * ```
   *
   * @example What a caller does with each failure
   * ```ts
   * import { LeadershipLostError, NotLeaderError, TimeoutError } from "./errors.ts";
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster();
   * const follower = cluster.nodes.find((n) => n.raft.state !== "leader")!.raft;
   * try {
   *   await follower.apply(new TextEncoder().encode("x"));
   * } catch (e) {
   *   if (e instanceof NotLeaderError) console.log("retry at", e.leader?.id);
   *   else if (e instanceof LeadershipLostError || e instanceof TimeoutError) {
   *     console.log(e.outcome === "unknown" ? "check before retrying" : e.outcome);
   *   } else throw e;
   * }
   * ```
   */
  apply(data: Uint8Array, options?: OperationOptions): Promise<ApplyResult<R>> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`apply: data must be a Uint8Array, got ${typeOf(data)}`));
    }
    return this.#propose(data, EntryType.Normal, "apply", options) as Promise<ApplyResult<R>>;
  }

  /**
   * Resolves once every entry before it is applied here (a no-op entry
   * committed and applied), with that entry's index. Use it after winning
   * leadership to serve reads from an up-to-date FSM.
   *
   * @throws {NotLeaderError} when this node is not the leader (nothing was appended; `leader` names
   * the one it knows, to retry there).
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped (shutdown, a disk
   * failure: the `cause`), before the entry was applied: `outcome` is `"not_committed"` (a newer
   * leader overwrote it), `"committed"` (it was committed; this node may not apply it) or
   * `"unknown"` (a new leader may still commit it: check before retrying a write that is not
   * idempotent).
   * @throws {TimeoutError} when `options.timeout` passed first: `outcome` is `"committed"` (it will be
   * applied) or `"unknown"`.
   * @throws {AbortError} when `options.signal` aborted first: `outcome` is `"not_committed"` (aborted
   * before it was proposed), `"committed"` or `"unknown"`.
   * @throws {LeadershipTransferError} while a leadership transfer is in progress (nothing was appended).
   * @throws {InvalidStateError} while a restore is in progress (nothing was appended).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down (nothing was appended).
   * @throws {StorageError} when the node stopped after a storage or state machine failure (nothing
   * was appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * const { index } = await raft.barrier();
   * console.log(raft.appliedIndex >= index); // true
   * ```
   */
  async barrier(options?: OperationOptions): Promise<IndexResult> {
    const r = await this.#propose(EMPTY, EntryType.Noop, "barrier", options);
    return { index: r.index };
  }

  /**
   * Confirm with a quorum that this node is still the leader (a heartbeat
   * round trip; no log write).
   *
   * @throws {NotLeaderError} when this node is not the leader, or lost leadership before a quorum
   * confirmed it.
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"not_committed"`: a read
   * changes nothing).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` `"not_committed"`).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * await raft.verifyLeader({ timeout: 1000 });
   * console.log("still the leader");
   * ```
   */
  async verifyLeader(options?: OperationOptions): Promise<void> {
    await this.#read(false, false, "verifyLeader", options);
  }

  /**
   * A linearizable read point: resolves with an index once this leader has
   * confirmed its leadership and applied up to it; reads of the FSM are then
   * linearizable. With `lease`, a valid leader lease (`leaderLeaseTimeout`
   * since a quorum last answered) skips the round trip.
   *
   * @throws {NotLeaderError} when this node is not the leader, or lost leadership before a quorum
   * confirmed it.
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"not_committed"`: a read
   * changes nothing).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` `"not_committed"`).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * await raft.apply(new TextEncoder().encode("x"));
   * const index = await raft.readIndex(); // or { lease: true }
   * console.log(raft.appliedIndex >= index); // true: read the FSM now
   * ```
   */
  readIndex(options?: ReadOptions): Promise<number> {
    return this.#read(options?.lease === true, true, "readIndex", options);
  }

  /**
   * Add a voter: it joins as `staging` (receives the log, does not vote) and
   * is promoted once within `catchupMargin` entries of the leader. Resolves
   * when the change commits. An id already present stays where it is (a
   * non-voter becomes staging); moving it to another address needs
   * `options.updateAddress`, so a typo or a second machine reusing an id
   * cannot cut a member off.
   *
   * @throws {TypeError} when `id` or `address` is not a non-empty string, or
   * `options.updateAddress` not a boolean.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {ConfigurationError} when the change is refused: another change is still uncommitted
   * (retried for up to 10 s first when `prevIndex` is 0), `prevIndex` is not the latest
   * configuration's index, another server has `address`, `id` is a member at another address
   * without `options.updateAddress`, or no voter would be left.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing was appended).
   * @throws {StorageError} when the node stopped after a storage or state machine failure (nothing
   * was appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const { index } = await raft.addVoter("n4", "n4");
   * console.log(raft.getConfiguration().index === index); // true
   * ```
   */
  addVoter(
    id: ServerId,
    address: ServerAddress,
    options?: AddServerOptions,
  ): Promise<IndexResult> {
    checkId(id, "addVoter: id");
    checkId(address, "addVoter: address");
    const updateAddress = checkUpdateAddress(options, "addVoter");
    return this.#changeMembership(
      { op: "addVoter", id, address, updateAddress },
      "addVoter",
      options,
    );
  }

  /**
   * Add a server that receives the log but does not vote nor count towards
   * quorum (a read replica). Resolves when the change commits. Refused as
   * {@linkcode Raft.addVoter} is: at a taken address, or moving a member
   * without `options.updateAddress`.
   *
   * @throws {TypeError} when `id` or `address` is not a non-empty string, or
   * `options.updateAddress` not a boolean.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {ConfigurationError} when the change is refused: another change is still uncommitted
   * (retried for up to 10 s first when `prevIndex` is 0), `prevIndex` is not the latest
   * configuration's index, another server has `address`, `id` is a member at another address
   * without `options.updateAddress`, or no voter would be left.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing was appended).
   * @throws {StorageError} when the node stopped after a storage or state machine failure (nothing
   * was appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * await raft.addNonvoter("replica", "replica");
   * const added = raft.getConfiguration().configuration.servers.find((s) => s.id === "replica");
   * console.log(added?.suffrage); // "nonvoter"
   * ```
   */
  addNonvoter(
    id: ServerId,
    address: ServerAddress,
    options?: AddServerOptions,
  ): Promise<IndexResult> {
    checkId(id, "addNonvoter: id");
    checkId(address, "addNonvoter: address");
    const updateAddress = checkUpdateAddress(options, "addNonvoter");
    return this.#changeMembership(
      { op: "addNonvoter", id, address, updateAddress },
      "addNonvoter",
      options,
    );
  }

  /**
   * Turn a voter into a non-voter. Resolves when the change commits.
   *
   * @throws {TypeError} when `id` is not a non-empty string.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {ConfigurationError} when the change is refused: another change is still uncommitted
   * (retried for up to 10 s first when `prevIndex` is 0), `prevIndex` is not the latest
   * configuration's index, the server is not a member, or no voter would be left.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing was appended).
   * @throws {StorageError} when the node stopped after a storage or state machine failure (nothing
   * was appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const other = cluster.nodes.find((n) => n.raft !== raft)!;
   * await raft.demoteVoter(other.id);
   * const server = raft.getConfiguration().configuration.servers.find((s) => s.id === other.id);
   * console.log(server?.suffrage); // "nonvoter"
   * ```
   */
  demoteVoter(id: ServerId, options?: MembershipOptions): Promise<IndexResult> {
    checkId(id, "demoteVoter: id");
    return this.#changeMembership({ op: "demote", id }, "demoteVoter", options);
  }

  /**
   * Remove a server. A leader removing itself hands over and steps down once
   * the change commits. Resolves when the change commits.
   *
   * @throws {TypeError} when `id` is not a non-empty string.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {ConfigurationError} when the change is refused: another change is still uncommitted
   * (retried for up to 10 s first when `prevIndex` is 0), `prevIndex` is not the latest
   * configuration's index, the server is not a member, or no voter would be left.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing was appended).
   * @throws {StorageError} when the node stopped after a storage or state machine failure (nothing
   * was appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const other = cluster.nodes.find((n) => n.raft !== raft)!;
   * await raft.removeServer(other.id, { prevIndex: raft.getConfiguration().index });
   * console.log(raft.getConfiguration().configuration.servers.length); // 2
   * ```
   */
  removeServer(id: ServerId, options?: MembershipOptions): Promise<IndexResult> {
    checkId(id, "removeServer: id");
    return this.#changeMembership({ op: "remove", id }, "removeServer", options);
  }

  /**
   * The latest configuration (in effect as soon as appended, committed or
   * not) and the index of the entry that set it. Never throws.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const { index, configuration } = raft.getConfiguration();
   * console.log(index, configuration.servers.map((s) => `${s.id}:${s.suffrage}`));
   * ```
   */
  getConfiguration(): { index: number; configuration: Configuration } {
    return this.#core.latestConfiguration();
  }

  /**
   * Hand leadership to `id` (or the most up-to-date voter): catch it up,
   * then tell it to start an election. Resolves once another node leads.
   * Proposals are refused while the transfer is in progress.
   *
   * @throws {TypeError} when `id` is given and is not a non-empty string.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {LeadershipTransferError} when the target is this node, unknown or not a voter, there is
   * no other voter, or the target did not take over within an election timeout.
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"not_committed"`).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const target = cluster.nodes.find((n) => n.raft !== raft)!;
   * await raft.leadershipTransfer(target.id, { timeout: 5000 });
   * console.log((await cluster.waitForLeader()).id === target.id); // true
   * ```
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

  /**
   * Take a snapshot now and compact the log, keeping `trailingLogs` entries
   * (manual compaction; automatic ones follow `snapshotThreshold`).
   *
   * @throws {InvalidStateError} when a snapshot is already being taken, or nothing was applied since
   * the last one.
   * @throws {StorageError} when the snapshot cannot be written, or the node stopped after a failure.
   * @throws {ShutdownError} when the node is shut down.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * const { index } = await raft.apply(new TextEncoder().encode("x"));
   * const info = await raft.snapshot();
   * console.log(info.index >= index); // true
   * ```
   */
  async snapshot(): Promise<SnapshotInfo> {
    this.#checkRunning();
    if (this.#snapshots.taking) throw new InvalidStateError("a snapshot is already being taken");
    this.#snapshots.checkSomethingNew();
    return await this.#snapshots.take();
  }

  /**
   * Replace the cluster's state with a user snapshot (leader only; operator
   * action, e.g. from a backup). The snapshot travels through the log as a
   * run of entries, and every node's FSM takes it when it applies the last
   * one: the restore commits like a write, by a quorum, at one index, and
   * writes after it see it. Resolves once it committed and this node's FSM
   * holds it. A leader that fails half way leaves a restore no node applies
   * (the outcome of the error says whether it may have committed).
   * Proposals are refused while a restore is in progress. The state is held
   * in memory while it is written (as log entries, until the next snapshot
   * compacts them).
   *
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {InvalidStateError} when a restore is already in progress.
   * @throws {LeadershipLostError} when leadership was lost before the restore committed (see its
   * `outcome`: check the cluster's state before retrying when `"unknown"`).
   * @throws {TimeoutError} when `options.timeout` passed first (with its `outcome`).
   * @throws {AbortError} when `options.signal` aborted first (with its `outcome`).
   * @throws {Error} whatever the FSM's `restore` or reading `data` threw.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster, RecordingFSM } from "../testing.ts";
   * await using cluster = await formCluster();
   * const raft = cluster.leader()!;
   * const backup = new RecordingFSM();
   * backup.apply({ index: 1, term: 1, data: new TextEncoder().encode("from the backup") });
   * const chunks: Uint8Array[] = [];
   * await backup.snapshot().persist({ write: async (c) => void chunks.push(c) });
   * await raft.restore((async function* () { yield* chunks; })());
   * console.log((cluster.node(raft.id).fsm as RecordingFSM).texts()); // ["from the backup"]
   * ```
   */
  async restore(data: AsyncIterable<Uint8Array>, options?: OperationOptions): Promise<void> {
    this.#checkRunning();
    if (this.#restoring) throw new InvalidStateError("a restore is already in progress");
    this.#restoring = true;
    try {
      const deadline = operationDeadline(this.#clock, options, "restore");
      if (this.#core.state !== "leader") throw this.#notLeader();
      // Each entry fits in one append.
      const size = Math.max(
        1,
        Math.min(RESTORE_PIECE_BYTES, this.#config.maxAppendBytes - RESTORE_HEADER_BYTES),
      );
      const pieces = await readPieces(data, size);
      options?.signal?.throwIfAborted();
      const first = this.#core.lastIndex + 1;
      const { index, term } = this.#core.propose(
        encodeRestoreEntries(first, pieces),
        EntryType.Restore,
      );
      const last = index + pieces.length - 1;
      const promise = this.#pending.addApply(
        last,
        term,
        "index",
        deadline,
        options?.signal,
        "restore",
      );
      this.#loop.schedule();
      await promise;
    } catch (e) {
      throw asAbortError(e, "restore");
    } finally {
      this.#restoring = false;
    }
  }

  /**
   * Be told of state changes, leader changes, membership changes, failed
   * heartbeats and snapshots. `filter` picks which; a callback that throws is
   * logged and the others still run. Returns a function that unsubscribes.
   *
   * @throws {TypeError} when `callback` is not a function.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const leaders: string[] = [];
   * const stop = raft.observe(
   *   (o) => o.type === "leader" && leaders.push(o.leader?.id ?? "none"),
   *   (o) => o.type === "leader",
   * );
   * await raft.leadershipTransfer();
   * await cluster.waitFor("the news", () => leaders.length > 0);
   * stop();
   * console.log(leaders.length > 0); // true
   * ```
   */
  observe(callback: (o: Observation) => void, filter?: (o: Observation) => boolean): () => void {
    if (typeof callback !== "function") {
      throw new TypeError(`observe: callback must be a function, got ${typeOf(callback)}`);
    }
    return this.#observers.observe(callback, filter);
  }

  /**
   * Change timing and snapshot settings at run time: `heartbeatInterval`,
   * `electionTimeout`, `leaderLeaseTimeout`, `snapshotThreshold`,
   * `snapshotInterval`, `trailingLogs` and `autoPromoteNonvoters`. Other keys
   * (`preVote`, `checkQuorum`, `maxAppendEntries`, …) are fixed for the node's
   * life and refused rather than ignored.
   *
   * @throws {TypeError} when `changes` names a key that cannot change at run time, or a value has
   * the wrong type (the message shows it).
   * @throws {RangeError} when a value is out of range or the timings contradict each other.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * raft.reloadConfig({ snapshotThreshold: 100, trailingLogs: 50 });
   * try {
   *   raft.reloadConfig({ preVote: false } as never);
   * } catch (e) {
   *   console.log((e as TypeError).message); // reloadConfig: "preVote" cannot change while the node runs; …
   * }
   * ```
   */
  reloadConfig(changes: ReloadableConfig): void {
    const next = resolveReload(this.#config, changes);
    this.#config = next;
    const { coreOptions, leaseMs } = coreOptionsFor(next, this.#tickMs);
    this.#lease.leaseMs = leaseMs;
    this.#core.reconfigure({
      electionTicks: coreOptions.electionTicks,
      heartbeatTicks: coreOptions.heartbeatTicks,
      leaseTicks: coreOptions.leaseTicks,
      autoPromoteNonvoters: coreOptions.autoPromoteNonvoters,
    });
    if (!this.#shutdown && !this.#failed) this.#snapshots.armTimer();
  }

  // --------------------------------------------------------------- getters

  /**
   * Role of the node: `"follower"`, `"candidate"`, `"leader"`, or
   * `"shutdown"` (after {@linkcode Raft.shutdown} or a failure).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * console.log(raft.state); // "leader"
   * ```
   */
  get state(): RaftState {
    return this.#shutdown || this.#failed ? "shutdown" : this.#core.state;
  }

  /**
   * The leader as far as this node knows (`undefined` during an election).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const follower = cluster.nodes.find((n) => n.raft !== raft)!.raft;
   * console.log(follower.leader?.id === raft.id); // true
   * ```
   */
  get leader(): LeaderInfo | undefined {
    return this.#loop.leader();
  }

  /**
   * `Date.now()`-style time of the last message from the leader (now, on the
   * leader; `undefined` before any).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const follower = cluster.nodes.find((n) => n.raft !== raft)!.raft;
   * console.log(Date.now() - (follower.lastContact ?? 0) < 10_000); // true
   * ```
   */
  get lastContact(): number | undefined {
    if (this.#core.state === "leader") return this.#clock.wallClock();
    const at = this.#loop.lastContactAt;
    return at === undefined ? undefined : this.#clock.wallClock() - (this.#clock.now() - at);
  }

  /**
   * Current term.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * console.log(raft.currentTerm >= 1); // true
   * ```
   */
  get currentTerm(): number {
    return this.#core.term;
  }

  /**
   * Index of the last entry in the log (committed or not).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * const { index } = await raft.apply(new Uint8Array([1]));
   * console.log(raft.lastIndex >= index); // true
   * ```
   */
  get lastIndex(): number {
    return this.#core.lastIndex;
  }

  /**
   * Index of the last entry known to be committed.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * const { index } = await raft.apply(new Uint8Array([1]));
   * console.log(raft.commitIndex >= index); // true
   * ```
   */
  get commitIndex(): number {
    return this.#core.commitIndex;
  }

  /**
   * Index of the last entry applied to the FSM.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * const { index } = await raft.apply(new Uint8Array([1]));
   * console.log(raft.appliedIndex >= index); // true
   * ```
   */
  get appliedIndex(): number {
    return this.#runner.appliedIndex;
  }

  /**
   * Whether this server learned it was removed: the configuration it applied
   * last does not list it, though an earlier one did. With
   * `config.shutdownOnRemove` (the default) the node then shuts down.
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * console.log(raft.removed); // false
   * ```
   */
  get removed(): boolean {
    return this.#removed;
  }

  /**
   * Index of the newest snapshot taken or installed here (0 before any).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * await raft.apply(new Uint8Array([1]));
   * await raft.snapshot();
   * console.log(raft.lastSnapshotIndex > 0); // true
   * ```
   */
  get lastSnapshotIndex(): number {
    return this.#snapshots.last.index;
  }

  /**
   * Counters, gauges and latency histograms (for metrics and status pages).
   *
   * @example
   * ```ts
   * import { formCluster } from "./testing/test_cluster.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * await raft.apply(new Uint8Array([1]));
   * const stats = raft.stats();
   * console.log(stats.state, stats.commitIndex, stats.fsyncs >= 0); // "leader" 3 true
   * ```
   */
  stats(): RaftStats {
    const conf = this.#core.latestConfiguration();
    const last = this.#snapshots.last;
    const contactAt = this.#loop.lastContactAt;
    const memory = this.#core.memoryUse();
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
      logEntriesInMemory: memory.entries,
      logBytesInMemory: memory.bytes,
      logReads: this.#loader.reads,
      logEntriesRead: this.#loader.entriesRead,
    };
  }

  // ------------------------------------------------------------- internals

  #checkRunning(): void {
    if (this.#shutdown) throw new ShutdownError();
    if (this.#failed) {
      throw new StorageError(`raft stopped after a storage failure: ${this.#failed.message}`);
    }
  }

  /** After applies: notice the configuration dropping (or listing again) this server. */
  #noteMembership(): void {
    const { index, configuration } = this.#runner.appliedConfiguration;
    const listed = configuration.servers.some((s) => s.id === this.id);
    if (listed) {
      this.#wasMember = true;
      this.#removed = false;
      return;
    }
    if (!this.#wasMember || this.#removed || this.#shutdown) return;
    this.#removed = true;
    this.#config.logger.info("{id} was removed from the cluster (configuration at index {index})", {
      id: this.id,
      index,
    });
    this.#observers.emit({ type: "removed", index });
    if (this.#config.shutdownOnRemove) {
      // Not from inside the apply loop that is telling us, and after an
      // election timeout: a leader that removed itself has the commit of its
      // removal to hand on first; and a server that was added back while it
      // was down replays its own removal on restart, so a leader that counts
      // it again gets that long to bring the newer configuration.
      this.#timers.after(this.#config.electionTimeout, () => {
        const listed = this.#core.latestConfiguration().configuration.servers.some((s) =>
          s.id === this.id
        );
        if (!this.#removed || listed || this.#shutdown) return;
        this.#config.logger.info("{id} shuts down: it was removed (shutdownOnRemove)", {
          id: this.id,
        });
        void this.shutdown();
      });
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
      if (this.#restoring) {
        throw new InvalidStateError("a restore is in progress; retry after it completes");
      }
      const deadline = operationDeadline(this.#clock, options, op);
      options?.signal?.throwIfAborted();
      // Nothing uncommitted: no batch to wait for, so send this one at once.
      const idle = this.#core.commitIndex === this.#core.lastIndex;
      const { index, term } = this.#core.propose([data], type);
      const kind = type === EntryType.Normal ? "apply" : "index";
      const promise = this.#pending.addApply(index, term, kind, deadline, options?.signal, op);
      if (idle) this.#loop.scheduleSoon();
      else this.#loop.schedule();
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
    if (this.#restoring) {
      throw new InvalidStateError("a restore is in progress; retry after it completes");
    }
    // A change right after an election or another change waits (at most 10 s
    // or the timeout) for the previous one to commit instead of failing at once.
    const giveUp = Math.min(deadline.at, this.#clock.now() + 10_000);
    for (;;) {
      // Aborted before (or between) proposals: nothing was proposed.
      if (options?.signal?.aborted) {
        throw new AbortError(op, "not_committed", { cause: options.signal.reason });
      }
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
      if (lease) {
        // A lease holding now serves the read without the Ready loop: judged
        // on the clock here, and again if it must wait for the FSM.
        const point = this.#core.leaseReadPoint();
        if (
          point !== undefined &&
          (point.leaseRound === undefined || this.#lease.holds(point.leaseRound))
        ) {
          const applied = this.#runner.appliedIndex;
          if (!waitApply || applied >= point.index) return Promise.resolve(point.index);
          const promise = this.#pending.addRead(id, waitApply, deadline, options?.signal, op);
          this.#pending.readConfirmed(id, point.index, applied, point.leaseRound);
          return promise;
        }
      }
      // Nothing in flight: no batch to wait for, so the heartbeat round goes out at once.
      const idle = !this.#pending.readsWaiting;
      this.#core.readIndex(id, lease);
      const promise = this.#pending.addRead(id, waitApply, deadline, options?.signal, op);
      if (idle) this.#loop.scheduleSoon();
      else this.#loop.schedule();
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
    this.#config.logger.error("raft {id} stopped after an error while {during}: {error}", {
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
