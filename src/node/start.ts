/**
 * Starting a node: load what the stores hold, build the core and every
 * collaborator around it (wired through one {@linkcode NodeContext}), then
 * start the transport, the ticks and the snapshot timer.
 *
 * @module
 */

import type { ResolvedConfig } from "../config.ts";
import { RaftCore } from "../core/raft_core.ts";
import type { Configuration } from "../core/types.ts";
import { NotLeaderError } from "../errors.ts";
import type { FSM } from "../fsm.ts";
import { HistogramRecorder } from "../metrics.ts";
import { type Clock, RealClock } from "../platform/clock.ts";
import type { Transport } from "../transport/types.ts";
import type { NodeContext } from "./context.ts";
import { FsmRunner } from "./fsm_runner.ts";
import { LeaseClock } from "./lease.ts";
import { Lifecycle } from "./lifecycle.ts";
import { LogLoader } from "./log_loader.ts";
import { Observers } from "./observers.ts";
import { PendingOperations } from "./pending.ts";
import { Proposals } from "./proposals.ts";
import { ReadyLoop } from "./ready_loop.ts";
import { loadStoredState, type StoredState } from "./recovery.ts";
import { RemovalWatch } from "./removal.ts";
import { Snapshots } from "./snapshots.ts";
import { NodeTimers } from "./timers.ts";
import { coreOptionsFor } from "./timing.ts";
import type { RaftStores } from "./types.ts";
import { WritePipeline } from "./write_pipeline.ts";

/** A started node: the core, its collaborators, and what they share. */
export interface NodeParts<R> {
  /** What the collaborators share. */
  readonly node: NodeContext;
  /** The settings in force; `reloadConfig` replaces them. */
  config: ResolvedConfig;
  /** The protocol state machine. */
  readonly core: RaftCore;
  /** The node's clock. */
  readonly clock: Clock;
  /** Every timer of the node. */
  readonly timers: NodeTimers;
  /** Milliseconds per core tick (fixed for the node's life). */
  readonly tickMs: number;
  /** How messages reach other servers. */
  readonly transport: Transport;
  /** Whether the node runs, and how it stops. */
  readonly lifecycle: Lifecycle;
  /** Who is told of changes. */
  readonly observers: Observers;
  /** When each heartbeat round was sent, for lease reads. */
  readonly lease: LeaseClock;
  /** Operations waiting on the node. */
  readonly pending: PendingOperations;
  /** Applies committed entries and restores, in order. */
  readonly runner: FsmRunner<R>;
  /** Persists Readies. */
  readonly pipeline: WritePipeline;
  /** Takes, installs, sends and restores snapshots. */
  readonly snapshots: Snapshots<R>;
  /** Reads older log entries from the log store. */
  readonly loader: LogLoader;
  /** Feeds and drains the core. */
  readonly loop: ReadyLoop<R>;
  /** Notices this server's removal. */
  readonly removal: RemovalWatch;
  /** Proposals to the core. */
  readonly proposals: Proposals;
  /** FSM apply batch latency. */
  readonly applySeconds: HistogramRecorder;
  /** `apply()` call to resolve latency on the leader. */
  readonly commitSeconds: HistogramRecorder;
}

/**
 * Start a node of `config` with `fsm` on `stores` (already checked): restores
 * the newest valid snapshot into the FSM, loads the log, and starts the
 * transport and timers. With `bootstrap` (already checked) and stores that
 * hold no state, the configuration is in the core before the transport
 * starts and on disk before this resolves. Closes a clock it created when
 * the transport fails to start.
 *
 * @example
 * ```ts
 * import { validateConfig } from "../config.ts";
 * import { RecordingFSM } from "../testing/recording_fsm.ts";
 * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../storage/mod.ts";
 * import { MemoryNetwork } from "../transport/mod.ts";
 * import { startNode } from "./start.ts";
 * const parts = await startNode(validateConfig({ id: "n1" }), new RecordingFSM(), {
 *   logStore: new MemoryLogStore(),
 *   stableStore: new MemoryStableStore(),
 *   snapshotStore: new MemorySnapshotStore(),
 *   transport: new MemoryNetwork().transport("n1"),
 * });
 * console.log(parts.core.term); // 0
 * await parts.lifecycle.shutdown();
 * ```
 */
export async function startNode<R>(
  config: ResolvedConfig,
  fsm: FSM<R>,
  stores: RaftStores,
  bootstrap?: Configuration,
): Promise<NodeParts<R>> {
  const stored = await loadStoredState(fsm, stores, config.logger, {
    keepBytes: config.logCacheBytes,
  });
  const parts = wire(config, fsm, stores, stored);
  const { core, loop } = parts;
  const bootstrapping = bootstrap !== undefined && core.term === 0 && core.lastIndex === 0 &&
    stored.snapshot === undefined;
  try {
    // Before the transport starts: a peer's term reaching us first would
    // give us state, and a node with state refuses to bootstrap.
    if (bootstrapping) parts.proposals.bootstrapCore(bootstrap);
    else if (bootstrap !== undefined) {
      config.logger.info("raft {id} has state: the bootstrap configuration is not used", {
        id: config.id,
      });
    }
    loop.noteConfiguration();
    await stores.transport.start(loop.handler());
  } catch (e) {
    if (stores.clock === undefined) parts.clock.close();
    throw e;
  }
  loop.start();
  parts.snapshots.armTimer();
  config.logger.info(
    "raft {id} started: term {term}, last index {last}, commit {commit}, snapshot {snap}",
    {
      id: config.id,
      term: core.term,
      last: core.lastIndex,
      commit: core.commitIndex,
      snap: stored.snapshot?.meta.index ?? 0,
    },
  );
  loop.schedule();
  if (bootstrapping) {
    try {
      await parts.proposals.persisted();
    } catch (e) {
      await parts.lifecycle.shutdown();
      throw e;
    }
  }
  return parts;
}

/** Build the core on `stored` and every collaborator around it. */
function wire<R>(
  config: ResolvedConfig,
  fsm: FSM<R>,
  stores: RaftStores,
  stored: StoredState,
): NodeParts<R> {
  const { tickMs, leaseMs, coreOptions } = coreOptionsFor(config);
  const core = new RaftCore(coreOptions, {
    hardState: stored.hardState,
    snapshot: stored.snapshot?.meta,
    log: stored.log,
  });
  const ownsClock = stores.clock === undefined;
  const clock = stores.clock ?? new RealClock();
  const timers = new NodeTimers(clock);
  const observers = new Observers(config.logger);
  // The collaborators call one another only once all are built: through `done()`.
  const built: { parts?: NodeParts<R> } = {};
  const done = () => built.parts!;
  const lifecycle = new Lifecycle(() => {
    const d = done();
    return {
      id: config.id,
      core,
      clock,
      ownsClock,
      timers,
      transport: stores.transport,
      config: () => d.config,
      snapshots: d.snapshots,
      pipeline: d.pipeline,
      pending: d.pending,
      loop: d.loop,
      observers,
    };
  });
  const node: NodeContext = {
    id: config.id,
    core,
    clock,
    timers,
    log: config.logger,
    config: () => done().config,
    failure: () => lifecycle.failure,
    isShutdown: () => lifecycle.isShutdown,
    fail: (error, during) => lifecycle.fail(error, during),
    scheduleReady: () => done().loop.schedule(),
    notLeader: () => new NotLeaderError(done().loop.leader()),
    emit: (o) => observers.emit(o),
  };
  const lease = new LeaseClock(clock, leaseMs);
  const commitSeconds = new HistogramRecorder();
  const applySeconds = new HistogramRecorder();
  const pending = new PendingOperations(clock, commitSeconds, () => core.commitIndex, {
    holds: (round) => core.state === "leader" && lease.holds(round),
    reissue: (id) => {
      try {
        core.readIndex(id, false);
      } catch (e) {
        return e as Error;
      }
      done().loop.schedule();
      return undefined;
    },
  });
  const runner: FsmRunner<R> = new FsmRunner(
    fsm,
    {
      settle: (index, term, response) => pending.settle(index, term, response),
      drained: () => {
        const applied = runner.appliedIndex;
        pending.releaseReads(applied);
        done().removal.note();
        done().snapshots.maybeAutoSnapshot();
        // Room for more committed entries (the core hands out maxAppendBytes at a time).
        if (core.appliedTo(applied)) done().loop.schedule();
      },
      fail: (error, during) => lifecycle.fail(error, during),
      exclusive: (fn) => done().snapshots.exclusive(fn),
    },
    clock,
    applySeconds,
    config.logger,
  );
  const pipeline = new WritePipeline(node, stores, {
    installSnapshot: (meta) => done().snapshots.install(meta),
    snapshotInstalled: (meta) => done().snapshots.noteInstalled(meta),
    persisted: (seq) => {
      pending.releasePersisted(seq);
      // Not right here: the pipeline first finishes this batch, so the next
      // Ready's write (and fdatasync) starts before its messages are sent.
      done().loop.scheduleSoon();
    },
  }, { lastIndex: stored.lastIndex, hardState: stored.hardState });
  const snapshots = new Snapshots(node, {
    fsm,
    store: stores.snapshotStore,
    transport: stores.transport,
    runner,
    pipeline,
    pending,
  });
  const loader = new LogLoader(node, stores.logStore);
  const loop = new ReadyLoop(node, {
    transport: stores.transport,
    pending,
    pipeline,
    runner,
    snapshots,
    observers,
    lease,
    loader,
  }, tickMs);
  runner.startFrom(core.appliedIndex, stored.snapshot?.meta);
  const removal = new RemovalWatch(
    node,
    () => runner.appliedConfiguration,
    () => void lifecycle.shutdown(),
  );
  if (stored.snapshot) {
    const { meta, size } = stored.snapshot;
    snapshots.startFrom({ index: meta.index, term: meta.term, size });
  }
  const proposals = new Proposals(node, { pending, loop });
  const parts: NodeParts<R> = {
    node,
    config,
    core,
    clock,
    timers,
    tickMs,
    transport: stores.transport,
    lifecycle,
    observers,
    lease,
    pending,
    runner,
    pipeline,
    snapshots,
    loader,
    loop,
    removal,
    proposals,
    applySeconds,
    commitSeconds,
  };
  built.parts = parts;
  return parts;
}
