/**
 * The Ready loop: feeds the core (ticks on the clock, messages from the
 * transport) and drains it — Readies go to the write pipeline (our own write
 * starts first), messages go out, committed entries go to the FSM runner,
 * confirmed reads to the pending operations. Requests are drained in one
 * macrotask per event-loop turn while others are in flight, so every
 * request of a turn shares one Ready (one append, one fsync); messages from
 * the network, and a request finding nothing in flight, are drained at the
 * end of the current microtask checkpoint, which saves a macrotask's
 * latency on the path of a commit.
 *
 * @module
 */

import type {
  InstallSnapshotRequest,
  Message,
  RaftState,
  ServerAddress,
  ServerId,
} from "../core/types.ts";
import { type LeaderInfo, NotLeaderError } from "../errors.ts";
import type { Transport, TransportHandler } from "../transport/types.ts";
import type { NodeContext } from "./context.ts";
import type { FsmRunner } from "./fsm_runner.ts";
import type { LeaseClock } from "./lease.ts";
import type { LogLoader } from "./log_loader.ts";
import type { Observers } from "./observers.ts";
import type { PendingOperations } from "./pending.ts";
import type { Snapshots } from "./snapshots.ts";
import type { WritePipeline } from "./write_pipeline.ts";

/** The collaborators the loop hands work to. */
export interface ReadyLoopParts<R> {
  /** How messages reach other servers. */
  transport: Transport;
  /** Operations waiting on the node. */
  pending: PendingOperations;
  /** Where Readies are persisted. */
  pipeline: WritePipeline;
  /** Where committed entries are applied. */
  runner: FsmRunner<R>;
  /** Snapshots to install and to send. */
  snapshots: Snapshots<R>;
  /** Who is told of changes. */
  observers: Observers;
  /** When each heartbeat round was sent, for lease reads. */
  lease: LeaseClock;
  /** Where older log entries are read from. */
  loader: LogLoader;
}

/**
 * Drives the core; see the module docs.
 *
 * @typeParam R What the FSM's `apply` returns.
 *
 * @example
 * ```ts
 * import type { ReadyLoop } from "./ready_loop.ts";
 * function afterProposing(loop: ReadyLoop<unknown>) {
 *   loop.schedule(); // the proposal joins the next Ready with everything else of this turn
 * }
 * ```
 */
export class ReadyLoop<R> {
  #node: NodeContext;
  #parts: ReadyLoopParts<R>;
  #tickMs: number;
  #scheduled = false;
  #soon = false;
  #inLoop = false;
  #lastReadySeq = 0;
  #leaderSinceTick = 0;
  #state: RaftState = "follower";
  #leader: ServerId = "";
  /** `clock.now()` of the last message from the leader. */
  #lastContactAt: number | undefined;
  #addresses = new Map<ServerId, ServerAddress>();
  #messagesSent: Record<string, number> = {};
  #messagesReceived: Record<string, number> = {};

  /** The loop of `node`, ticking every `tickMs`. */
  constructor(node: NodeContext, parts: ReadyLoopParts<R>, tickMs: number) {
    this.#node = node;
    this.#parts = parts;
    this.#tickMs = tickMs;
  }

  /** Sequence number of the last Ready taken from the core. */
  get lastReadySeq(): number {
    return this.#lastReadySeq;
  }

  /** `clock.now()` of the last message from the leader, if any. */
  get lastContactAt(): number | undefined {
    return this.#lastContactAt;
  }

  /** Messages sent, by type. */
  get messagesSent(): Record<string, number> {
    return { ...this.#messagesSent };
  }

  /** Messages received, by type. */
  get messagesReceived(): Record<string, number> {
    return { ...this.#messagesReceived };
  }

  /** The role reported to observers; "shutdown" once stopped. */
  set state(state: RaftState) {
    this.#state = state;
  }

  /** The leader as far as the core knows, with its address. */
  leader(): LeaderInfo | undefined {
    const id = this.#node.core.leader;
    return id ? { id, address: this.#addresses.get(id) ?? "" } : undefined;
  }

  /** Start ticking every `tickMs` on the clock; after a pause, carry on from now (no burst). */
  start(): void {
    const { clock, timers } = this.#node;
    let due = clock.now() + this.#tickMs;
    const onTick = () => {
      const now = clock.now();
      due += this.#tickMs;
      if (due <= now) due = now + this.#tickMs;
      timers.after(due - now, onTick);
      this.#tick();
    };
    timers.after(this.#tickMs, onTick);
  }

  /** Drain the core soon: one macrotask, so the whole turn's work shares one Ready. */
  schedule(): void {
    const node = this.#node;
    if (this.#scheduled || node.isShutdown()) return;
    this.#scheduled = true;
    // A macrotask, not a microtask: every request that arrived in this
    // event-loop turn joins the same Ready (one append, one fsync), at the cost
    // of a few microseconds. A timer would cost milliseconds.
    node.clock.queueTask(this.#runScheduled);
  }

  #runScheduled = (): void => {
    this.#scheduled = false;
    this.process();
  };

  /**
   * Drain the core once the current microtask checkpoint is done, without
   * waiting for a macrotask (25–35 µs each here, twice on a commit's path):
   * for messages from the network, which arrive a whole read at a time (all
   * of them are stepped before this runs), and for a proposal or a read when
   * nothing is in flight to batch it with.
   */
  scheduleSoon(): void {
    if (this.#soon || this.#node.isShutdown()) return;
    this.#soon = true;
    queueMicrotask(this.#runSoon);
  }

  #runSoon = (): void => {
    this.#soon = false;
    this.process();
  };

  /** What the transport delivers. */
  handler(): TransportHandler {
    const node = this.#node;
    return {
      onMessage: (m: Message, from: ServerAddress) => {
        if (node.isShutdown()) return;
        if (from !== "" && !this.#addresses.has(m.from)) this.#addresses.set(m.from, from);
        this.#messagesReceived[m.type] = (this.#messagesReceived[m.type] ?? 0) + 1;
        try {
          node.core.step(m);
        } catch (e) {
          node.fail(e as Error, "processing a message");
          return;
        }
        if (m.from === node.core.leader && node.core.state !== "leader") {
          this.#lastContactAt = node.clock.now();
        }
        this.scheduleSoon();
      },
      onSnapshot: async (
        m: InstallSnapshotRequest,
        data: AsyncIterable<Uint8Array>,
        from: ServerAddress,
      ) => {
        if (from !== "" && !this.#addresses.has(m.from)) this.#addresses.set(m.from, from);
        this.#messagesReceived[m.type] = (this.#messagesReceived[m.type] ?? 0) + 1;
        await this.#parts.snapshots.receive(m, data);
        this.#lastContactAt = node.clock.now();
        this.schedule();
      },
    };
  }

  #tick(): void {
    const node = this.#node;
    if (node.isShutdown() || node.failure()) return;
    const core = node.core;
    const { pending, observers } = this.#parts;
    core.tick();
    // Transfers first: one whose successor is known by now succeeded, even
    // if its deadline passed since the last tick.
    this.#checkTransfers();
    pending.checkDeadlines();
    observers.checkHeartbeats(
      core,
      Math.ceil(node.config().electionTimeout / this.#tickMs),
      this.#leaderSinceTick,
      (ticksAgo) => node.clock.wallClock() - ticksAgo * this.#tickMs,
    );
    this.process();
  }

  /** Drain the core: send messages, queue writes, apply committed entries. */
  process(): void {
    const node = this.#node;
    if (this.#inLoop || node.isShutdown() || node.failure()) return;
    const core = node.core;
    const { pending, pipeline, runner, snapshots, loader } = this.#parts;
    this.#inLoop = true;
    const outbox: Message[][] = [];
    try {
      while (core.hasReady()) {
        const rd = core.ready();
        this.#lastReadySeq = rd.seq;
        if (rd.softState) this.#onSoftState(rd.softState.state, rd.softState.leader);
        if (rd.entries.length > 0 || rd.snapshot) this.noteConfiguration();
        if (rd.messages.length > 0) outbox.push(rd.messages);
        for (const load of rd.loads) loader.load(load);
        // The FSM restores it in order: after what was committed before, before what follows.
        if (rd.snapshot) snapshots.queueInstall(rd.snapshot);
        pipeline.push(rd);
        runner.enqueue(rd.committed);
        for (const rs of rd.readStates) {
          pending.readConfirmed(rs.id, rs.index, runner.appliedIndex, rs.leaseRound);
        }
        for (const id of rd.droppedReads) {
          pending.dropRead(
            id,
            new NotLeaderError(this.leader(), "leadership lost before the read was confirmed"),
          );
        }
      }
    } finally {
      this.#inLoop = false;
    }
    // Our own write and its fdatasync start first: on a loopback network each
    // send is a syscall that can take as long as the write (tens to hundreds
    // of µs on a busy machine), and our disk counts toward the quorum too.
    // Then the messages, then the FSM: followers start their part sooner.
    pipeline.kick();
    for (const messages of outbox) for (const m of messages) this.send(m);
    runner.drain();
  }

  /** Send `m` to its server (a snapshot streams from the store). */
  send(m: Message): void {
    const core = this.#node.core;
    this.#messagesSent[m.type] = (this.#messagesSent[m.type] ?? 0) + 1;
    const address = this.#addresses.get(m.to);
    if (address === undefined) {
      this.#node.log.debug("no address for {to}; dropping {type}", { to: m.to, type: m.type });
      if (m.type === "snapshot") core.reportSnapshot(m.to, false);
      return;
    }
    if (m.type === "snapshot") {
      void this.#parts.snapshots.send(address, m);
      return;
    }
    // A lease runs from when its heartbeat round went out, on the clock.
    if (m.type === "heartbeat") this.#parts.lease.sent(m.context);
    this.#parts.transport.send(address, m);
  }

  #onSoftState(state: RaftState, leader: ServerId): void {
    const node = this.#node;
    const { pending, observers } = this.#parts;
    const wasLeader = this.#state === "leader";
    if (state !== this.#state) {
      this.#state = state;
      this.#node.log.info("{id} is now {state} in term {term}", {
        id: node.id,
        state,
        term: node.core.term,
      });
      observers.emit({ type: "state", state, term: node.core.term });
    }
    if (leader !== this.#leader) {
      this.#leader = leader;
      observers.emit({ type: "leader", leader: this.leader(), term: node.core.term });
      if (leader !== "" && leader !== node.id) this.#lastContactAt = node.clock.now();
    }
    if (wasLeader && state !== "leader") {
      this.#parts.lease.forget();
      pending.rejectUncommitted(node.core.commitIndex);
      observers.clearHeartbeatFailures();
    }
    if (!wasLeader && state === "leader") this.#leaderSinceTick = node.core.ticks;
    this.#checkTransfers();
  }

  #checkTransfers(): void {
    const { core, id } = this.#node;
    this.#parts.pending.checkTransfers({
      leading: core.state === "leader",
      transferAborted: core.leadTransferee === "",
      otherLeader: core.leader !== "" && core.leader !== id,
      // A successor is elected within an election timeout (randomized up to twice that).
      successorWithin: 2 * this.#node.config().electionTimeout,
    });
  }

  /** Track addresses of every server ever in a configuration, and report membership changes. */
  noteConfiguration(): void {
    const latest = this.#node.core.latestConfiguration();
    for (const s of latest.configuration.servers) this.#addresses.set(s.id, s.address);
    this.#parts.observers.noteConfiguration(latest);
  }
}
