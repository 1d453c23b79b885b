/**
 * Deterministic simulation of a cluster of pure Raft cores over a simulated
 * network (loss, duplication, reordering, delay, symmetric and one-way
 * partitions) and simulated disks (latency, crashes that lose unsynced
 * writes, torn tails), with clock drift, membership churn, leadership
 * transfers, local snapshots with log compaction, client writes and
 * linearizable reads. Everything is driven by one seed: the same seed replays
 * the same run, event for event.
 *
 * After every event the safety invariants are checked (see `checker.ts`); at
 * the end the faults heal and the run checks liveness: a leader is elected and
 * every acknowledged write is applied on every member.
 *
 * @module
 */

import { ConfigurationError, LeadershipTransferError, NotLeaderError } from "../../src/errors.ts";
import type { ConfigurationChange } from "../../src/core/membership.ts";
import {
  type CoreInitialState,
  type CoreOptions,
  type LogLoad,
  RaftCore,
  type Ready,
} from "../../src/core/raft_core.ts";
import {
  type Configuration,
  type Entry,
  EntryType,
  type Message,
  type SnapshotMeta,
} from "../../src/core/types.ts";
import { Checker } from "./checker.ts";
import { EventQueue, type Timed } from "./event_queue.ts";
import { Prng } from "./prng.ts";
import { decodeWrite, encodeWrite, type FsmSnapshot, KEYS, SimDisk, SimFsm } from "./sim_fsm.ts";

/** Simulated time units per nominal tick. */
export const TICK = 100;

/** What to simulate. */
export interface SimOptions {
  /** The seed; every random choice derives from it. */
  seed: number;
  /** Cluster size (3 or 5 voters at start; two spare servers can join). Default: 3 for even seeds, 5 for odd. */
  nodes?: number;
  /** Steps (nominal ticks) of the chaotic phase before faults heal. Default 300. */
  steps?: number;
  /** Steps allowed after healing for a leader to commit and every member to apply. Default 250. */
  healSteps?: number;
  /** Inject faults (network, crashes, churn). Default true. */
  faults?: boolean;
  /** Receives a readable line for every event when set. */
  trace?: (line: string) => void;
  /** Builds each node's core (tests use it to plant a bug the run must catch). */
  createCore?: (options: CoreOptions, initial: CoreInitialState) => RaftCore;
}

/** Counters of one run. */
export interface SimStats {
  /** Distinct (term, leader) pairs seen. */
  elections: number;
  /** Highest term reached. */
  maxTerm: number;
  /** Highest committed index. */
  committed: number;
  /** Client writes proposed to a leader. */
  writesProposed: number;
  /** Client writes acknowledged (applied on the node that proposed them). */
  writesAcked: number;
  /** Linearizable reads served and checked. */
  readsServed: number;
  /** Lease reads among them. */
  leaseReads: number;
  /** Local snapshots taken. */
  snapshotsTaken: number;
  /** Snapshots installed from a leader. */
  snapshotsInstalled: number;
  /** Node crashes. */
  crashes: number;
  /** Writes torn or lost by crashes. */
  tornWrites: number;
  /** Partitions started. */
  partitions: number;
  /** Configuration changes accepted by a leader. */
  configChanges: number;
  /** Leadership transfers started. */
  transfers: number;
  /** Messages sent. */
  messages: number;
}

/** Outcome of one run. */
export interface SimResult {
  /** The seed. */
  seed: number;
  /** Cluster size. */
  nodes: number;
  /** Steps (nominal ticks) simulated. */
  steps: number;
  /** Events processed. */
  events: number;
  /** The first invariant violation, if any. */
  violation?: string;
  /** Counters. */
  stats: SimStats;
}

const enum Kind {
  Step,
  Tick,
  Deliver,
  Disk,
  Report,
  /** A read of older log entries from a node's disk answers (`load`, `entries`). */
  Load,
  /** A node's FSM reports it applied up to `index` (delayed `appliedTo`). */
  ApplyAck,
}

interface SimEvent extends Timed {
  kind: Kind;
  /** Target node index (tick, disk, report: the sender), or receiver (deliver). */
  node: number;
  /** Incarnation of `node` the event belongs to (tick, disk, report). */
  inc: number;
  msg?: Message;
  from?: number;
  fromInc?: number;
  data?: FsmSnapshot;
  dup?: boolean;
  ok?: boolean;
  peer?: string;
  load?: LogLoad;
  /** Entries read when the load was asked (undefined: read when it answers). */
  entries?: Entry[];
  index?: number;
}

interface Proposal {
  term: number;
  writeId: number;
  key: number;
}

interface PendingRead {
  key: number;
  required: number;
  lease: boolean;
  index: number;
  issuedStep: number;
}

interface PendingWrite {
  rd: Ready;
  done: number;
}

type DiskMode = "sync" | "fast" | "slow";

interface Params {
  n: number;
  ids: string[];
  electionTicks: number;
  heartbeatTicks: number;
  leaseTicks: number;
  maxAppendEntries: number;
  maxAppendBytes: number;
  maxInflight: number;
  catchupMargin: number;
  autoPromote: boolean;
  maxApplyBatch: number;
  lossRate: number;
  dupRate: number;
  delayMin: number;
  delayMax: number;
  slowRate: number;
  snapshotEvery: number;
  snapshotTrailing: number;
  pWrite: number;
  pRead: number;
  pConf: number;
  pTransfer: number;
  pPartition: number;
  pCrash: number;
  /** Leader storms: frequent, short leader isolations and crashes (many terms, partial replication). */
  storm: boolean;
  pPowerLoss: number;
  /** Bytes of durable entries each core caches (Infinity: all, no reads from disk). */
  cacheBytes: number;
  /** Bytes handed to the FSM and not yet acknowledged (Infinity: no flow control). */
  maxApplyBytes: number;
  /** Latest a read of log entries answers (time units). */
  loadDelayMax: number;
  /** Chance a read fails (answers nothing), is lost (never answers), or returns fewer entries. */
  pLoadFail: number;
  pLoadLost: number;
  pLoadShort: number;
  /** Chance the FSM acknowledges an applied batch late. */
  pAckLate: number;
}

class SimNode {
  core: RaftCore | undefined;
  up = false;
  inc = 0;
  disk = new SimDisk();
  fsm = new SimFsm();
  queue: PendingWrite[] = [];
  diskDone = 0;
  snapData = new Map<number, FsmSnapshot>();
  proposals = new Map<number, Proposal>();
  reads = new Map<number, PendingRead>();
  waiting: number[] = [];
  lastCommitSeen = 0;
  leaderTerm = 0;
  restartStep = -1;
  lastSnapshot = 0;

  constructor(
    readonly idx: number,
    readonly id: string,
    readonly period: number,
    public diskMode: DiskMode,
  ) {}
}

/**
 * Run one seeded simulation.
 *
 * @example
 * ```ts
 * import { runSimulation } from "./simulation.ts";
 * const result = runSimulation({ seed: 1, steps: 50 });
 * console.log(result.violation ?? "ok");
 * ```
 */
export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  readonly seed: number;
  readonly rng: Prng;
  readonly p: Params;
  readonly nodes: SimNode[] = [];
  readonly index = new Map<string, number>();
  readonly queue = new EventQueue<SimEvent>();
  readonly checker = new Checker();
  readonly trace: ((line: string) => void) | undefined;
  readonly createCore: (options: CoreOptions, initial: CoreInitialState) => RaftCore;
  readonly chaosSteps: number;
  readonly healSteps: number;
  readonly faults: boolean;
  readonly stats: SimStats = {
    elections: 0,
    maxTerm: 0,
    committed: 0,
    writesProposed: 0,
    writesAcked: 0,
    readsServed: 0,
    leaseReads: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    crashes: 0,
    tornWrites: 0,
    partitions: 0,
    configChanges: 0,
    transfers: 0,
    messages: 0,
  };
  time = 0;
  step = 0;
  events = 0;
  done = false;
  blocked: Uint16Array;
  partitions: Array<{ until: number; pairs: Array<[number, number]> }> = [];
  lossRate: number;
  dupRate: number;
  slowRate: number;
  nextWriteId = 1;
  nextReadId = 1;
  ackedMax: number[] = new Array(KEYS).fill(0);
  acked = new Map<number, number>();
  healStart = -1;
  /** Budget of events: far above what a healthy run needs, it stops a runaway run. */
  readonly maxEvents: number;
  healBound = 0;
  finalWrite:
    | { node: number; inc: number; writeId: number; index: number; term: number }
    | undefined;

  constructor(options: SimOptions) {
    this.seed = options.seed;
    this.rng = new Prng(options.seed);
    this.trace = options.trace;
    this.createCore = options.createCore ?? ((o, i) => new RaftCore(o, i));
    this.chaosSteps = options.steps ?? 300;
    this.healSteps = options.healSteps ?? 250;
    this.faults = options.faults ?? true;
    this.maxEvents = 2000 * (this.chaosSteps + this.healSteps) + 200_000;
    const n = options.nodes ?? (options.seed % 2 === 0 ? 3 : 5);
    if (n < 1 || n > 9) throw new RangeError(`nodes must be between 1 and 9, got ${n}`);
    this.p = this.#chooseParams(n);
    this.blocked = new Uint16Array(this.p.ids.length * this.p.ids.length);
    this.lossRate = this.p.lossRate;
    this.dupRate = this.p.dupRate;
    this.slowRate = this.p.slowRate;
  }

  #chooseParams(n: number): Params {
    const r = this.rng;
    const f = this.faults;
    const ids = Array.from({ length: n + 2 }, (_, i) => `n${i + 1}`);
    const electionTicks = r.int(6, 12);
    const delayMin = r.int(1, 10);
    return {
      n,
      ids,
      electionTicks,
      heartbeatTicks: r.int(1, Math.min(3, electionTicks >> 1)),
      // Clock drift is at most 4% (periods 96..104), so a lease two ticks
      // shorter than the election timeout always expires first.
      leaseTicks: electionTicks - 2,
      maxAppendEntries: r.pick([1, 3, 16, 64]),
      maxAppendBytes: r.pick([16, 1 << 20]),
      maxInflight: r.int(1, 8),
      catchupMargin: r.int(0, 20),
      autoPromote: r.chance(0.3),
      maxApplyBatch: r.pick([1, 4, 64]),
      lossRate: f ? r.pick([0, 0.01, 0.05, 0.15]) : 0,
      dupRate: f ? r.pick([0, 0.02, 0.1]) : 0,
      delayMin,
      delayMax: delayMin + r.pick([0, 10, 40, 90]),
      slowRate: f ? r.pick([0, 0.01, 0.05]) : 0,
      snapshotEvery: r.chance(0.15) ? Infinity : r.int(4, 60),
      snapshotTrailing: r.int(0, 10),
      pWrite: 0.3 + 0.6 * r.float(),
      pRead: 0.1 + 0.5 * r.float(),
      pConf: f ? r.pick([0, 0.02, 0.06]) : 0,
      pTransfer: f ? r.pick([0, 0.01, 0.04]) : 0,
      pPartition: f ? r.pick([0, 0.01, 0.04]) : 0,
      pCrash: f ? r.pick([0, 0.005, 0.02]) : 0,
      storm: f && r.chance(0.25),
      pPowerLoss: f ? r.pick([0, 0.002]) : 0,
      cacheBytes: r.pick([Infinity, 0, 150, 700, 4000]),
      maxApplyBytes: r.pick([Infinity, 1, 400, 3000]),
      loadDelayMax: r.pick([0, 20, 150]),
      pLoadFail: f ? r.pick([0, 0.02, 0.1]) : 0,
      pLoadLost: f ? r.pick([0, 0.01]) : 0,
      pLoadShort: r.pick([0, 0.2]),
      pAckLate: r.pick([0, 0.3]),
    };
  }

  #coreOptions(node: SimNode): CoreOptions {
    const rng = this.rng.fork();
    const p = this.p;
    return {
      id: node.id,
      electionTicks: p.electionTicks,
      heartbeatTicks: p.heartbeatTicks,
      leaseTicks: p.leaseTicks,
      preVote: true,
      checkQuorum: true,
      maxAppendEntries: p.maxAppendEntries,
      maxAppendBytes: p.maxAppendBytes,
      maxInflight: p.maxInflight,
      catchupMargin: p.catchupMargin,
      autoPromoteNonvoters: p.autoPromote,
      maxApplyBatch: p.maxApplyBatch,
      maxCacheBytes: p.cacheBytes,
      maxApplyBytes: p.maxApplyBytes,
      random: () => rng.float(),
    };
  }

  #tr(line: string): void {
    if (this.trace) this.trace(`${String(this.time).padStart(7)} s${this.step} ${line}`);
  }

  // ------------------------------------------------------------------ run

  run(): SimResult {
    const p = this.p;
    const f = this.faults;
    const configuration: Configuration = {
      servers: p.ids.slice(0, p.n).map((id) => ({ id, address: `addr-${id}`, suffrage: "voter" })),
    };
    for (let i = 0; i < p.ids.length; i++) {
      const id = p.ids[i];
      const period = TICK + (f ? this.rng.int(-4, 4) : 0);
      const mode: DiskMode = !f ? "sync" : this.rng.pick(["sync", "fast", "slow"] as const);
      const node = new SimNode(i, id, period, mode);
      this.nodes.push(node);
      this.index.set(id, i);
    }
    this.#tr(
      `params ${JSON.stringify({ ...p, ids: undefined })} periods=${
        this.nodes.map((n) => `${n.id}:${n.period}/${n.diskMode}`).join(",")
      }`,
    );
    try {
      for (const node of this.nodes) {
        this.#start(node, node.idx < p.n ? configuration : undefined);
      }
      this.#schedule({ kind: Kind.Step, node: -1, inc: 0, time: TICK, seq: 0 });
      while (!this.done && this.checker.violation === undefined) {
        const ev = this.queue.pop();
        if (!ev) {
          this.checker.fail("simulation: event queue ran dry");
          break;
        }
        this.time = ev.time;
        if (++this.events > this.maxEvents) {
          this.checker.fail(
            `simulation: more than ${this.maxEvents} events by step ${this.step} (${this.queue.size} queued): a message storm or livelock`,
          );
          break;
        }
        this.#dispatch(ev);
      }
    } catch (e) {
      const err = e as Error;
      this.checker.fail(`exception at step ${this.step}: ${err.stack ?? err.message}`);
    }
    this.stats.committed = this.checker.maxCommitted;
    const result: SimResult = {
      seed: this.seed,
      nodes: p.n,
      steps: this.step,
      events: this.events,
      stats: this.stats,
    };
    if (this.checker.violation !== undefined) result.violation = this.checker.violation;
    return result;
  }

  #schedule(ev: SimEvent): void {
    this.queue.push(ev);
  }

  #dispatch(ev: SimEvent): void {
    switch (ev.kind) {
      case Kind.Step:
        this.#onStep();
        if (!this.done) {
          this.#schedule({ kind: Kind.Step, node: -1, inc: 0, time: this.time + TICK, seq: 0 });
        }
        return;
      case Kind.Tick: {
        const node = this.nodes[ev.node];
        if (!node.up || node.inc !== ev.inc) return;
        node.core!.tick();
        this.#drain(node);
        this.#schedule({
          kind: Kind.Tick,
          node: node.idx,
          inc: node.inc,
          time: this.time + node.period,
          seq: 0,
        });
        return;
      }
      case Kind.Deliver:
        this.#deliver(ev);
        return;
      case Kind.Disk: {
        const node = this.nodes[ev.node];
        if (!node.up || node.inc !== ev.inc) return;
        const head = node.queue.shift();
        if (!head) throw new Error(`disk event on ${node.id} with an empty write queue`);
        this.#persist(node, head.rd, Infinity);
        this.#tr(`${node.id} disk: ready #${head.rd.seq} durable`);
        node.core!.advance(head.rd);
        this.#drain(node);
        return;
      }
      case Kind.Load:
        this.#answerLoad(ev);
        return;
      case Kind.ApplyAck: {
        const node = this.nodes[ev.node];
        if (!node.up || node.inc !== ev.inc) return;
        node.core!.appliedTo(ev.index!);
        this.#drain(node);
        return;
      }
      case Kind.Report: {
        const node = this.nodes[ev.node];
        if (!node.up || node.inc !== ev.inc) return;
        if (ev.ok === undefined) node.core!.reportUnreachable(ev.peer!);
        else node.core!.reportSnapshot(ev.peer!, ev.ok);
        this.#tr(
          `${node.id} report ${
            ev.ok === undefined ? "unreachable" : `snapshot ok=${ev.ok}`
          } ${ev.peer}`,
        );
        this.#drain(node);
        return;
      }
    }
  }

  // ------------------------------------------------------------- node life

  #start(node: SimNode, bootstrap: Configuration | undefined): void {
    const disk = node.disk;
    node.inc++;
    node.up = true;
    node.queue = [];
    node.diskDone = 0;
    node.proposals.clear();
    node.reads.clear();
    node.waiting = [];
    node.snapData = new Map();
    node.leaderTerm = 0;
    if (disk.snapshot) node.snapData.set(disk.snapshot.meta.index, disk.snapshot.data);
    node.fsm = new SimFsm(disk.snapshot?.data);
    node.lastSnapshot = disk.snapshot?.meta.index ?? 0;
    const core = this.createCore(this.#coreOptions(node), {
      hardState: disk.hardState ? { ...disk.hardState } : undefined,
      snapshot: disk.snapshot?.meta,
      entries: disk.log.slice(),
    });
    node.core = core;
    if (bootstrap) core.bootstrap(bootstrap);
    if (core.appliedIndex !== node.fsm.applied) {
      this.checker.fail(
        `restart: ${node.id} core applied index ${core.appliedIndex} differs from its snapshot's ${node.fsm.applied}`,
      );
    }
    node.lastCommitSeen = node.fsm.applied;
    this.#tr(
      `${node.id} start inc=${node.inc} term=${core.term} vote=${
        core.vote || "-"
      } snap=${node.lastSnapshot} log=${core.firstIndex}..${core.lastIndex} commit=${core.commitIndex}`,
    );
    const first = this.time + this.rng.int(1, node.period);
    this.#schedule({ kind: Kind.Tick, node: node.idx, inc: node.inc, time: first, seq: 0 });
    this.#drain(node);
  }

  #crash(node: SimNode): void {
    if (!node.up) return;
    this.stats.crashes++;
    let note = "";
    if (node.queue.length > 0) {
      this.stats.tornWrites++;
      // The write in progress may have reached the disk in part (a torn
      // tail) or entirely (durable but never acknowledged to the core).
      if (this.rng.chance(0.7)) {
        const head = node.queue[0].rd;
        const total = (head.snapshot ? 1 : 0) + head.entries.length + (head.hardState ? 1 : 0);
        const cut = this.rng.int(0, total);
        this.#persist(node, head, cut);
        note = ` (ready #${head.seq}: ${cut}/${total} writes reached the disk)`;
      }
      note += ` lost ${node.queue.length} unsynced ready(s)`;
    }
    node.up = false;
    node.core = undefined;
    node.queue = [];
    node.inc++;
    this.#tr(`${node.id} CRASH${note}`);
  }

  // ------------------------------------------------------------- readies

  #drain(node: SimNode): void {
    const core = node.core!;
    let guard = 0;
    while (core.hasReady()) {
      if (++guard > 100_000) throw new Error(`${node.id}: the Ready loop does not converge`);
      this.#handleReady(node, core, core.ready());
      if (this.checker.violation !== undefined) return;
    }
    this.#maybeSnapshot(node, core);
    this.#checkNode(node, core);
  }

  #handleReady(node: SimNode, core: RaftCore, rd: Ready): void {
    if (rd.softState && this.trace) {
      this.#tr(
        `${node.id} state ${rd.softState.state} term=${rd.softState.term} leader=${
          rd.softState.leader || "-"
        }`,
      );
    }
    // Log matching is checked where entries can matter: when a follower
    // appends what it received, and (below) when any log reaches a disk. A
    // leader's own entries that were never sent nor persisted vanish with a
    // crash, and the same (index, term) may then be reused harmlessly (a
    // single voter re-elected in the term its lost Ready never recorded).
    if (rd.entries.length > 0 && core.state !== "leader") {
      const first = rd.entries[0].index;
      const prevTerm = rd.snapshot && rd.snapshot.index === first - 1
        ? rd.snapshot.term
        : core.termAt(first - 1);
      this.checker.entriesAppended(node.id, prevTerm, rd.entries);
    }
    if (rd.snapshot) {
      const meta = rd.snapshot;
      const data = node.snapData.get(meta.index);
      if (!data) {
        throw new Error(`${node.id}: no data for the snapshot at ${meta.index} it installs`);
      }
      if (meta.index <= node.fsm.applied) {
        this.checker.fail(
          `applied index: ${node.id} installs snapshot ${meta.index} at or below its applied index ${node.fsm.applied}`,
        );
        return;
      }
      node.fsm = new SimFsm(data);
      this.stats.snapshotsInstalled++;
      this.#tr(`${node.id} install snapshot ${meta.index}/${meta.term}`);
    }
    for (const e of rd.committed) {
      if (e.index !== node.fsm.applied + 1) {
        this.checker.fail(
          `applied index: ${node.id} applies index ${e.index} after ${node.fsm.applied} (gap or going backwards)`,
        );
        return;
      }
      this.checker.applied(node.id, e);
      node.fsm.apply(e);
      const prop = node.proposals.get(e.index);
      if (prop) {
        node.proposals.delete(e.index);
        if (
          prop.term === e.term && e.type === EntryType.Normal &&
          decodeWrite(e.data).writeId === prop.writeId
        ) {
          this.#ack(node, e, prop);
        }
      }
    }
    if (core.appliedIndex !== node.fsm.applied) {
      this.checker.fail(
        `applied index: ${node.id} core reports applied ${core.appliedIndex} but handed out up to ${node.fsm.applied}`,
      );
      return;
    }
    if (rd.committed.length > 0 || rd.snapshot) this.#ackApplied(node, core);
    for (const load of rd.loads) this.#askLoad(node, load);
    for (const rs of rd.readStates) {
      const read = node.reads.get(rs.id);
      if (!read) throw new Error(`${node.id}: read state for unknown read ${rs.id}`);
      read.index = rs.index;
      node.waiting.push(rs.id);
    }
    for (const id of rd.droppedReads) node.reads.delete(id);
    if (node.waiting.length > 0) this.#serveReads(node);
    for (const m of rd.messages) this.#send(node, m);
    if (node.diskMode === "sync") {
      this.#persist(node, rd, Infinity);
      core.advance(rd);
      return;
    }
    const latency = node.diskMode === "fast"
      ? this.rng.int(1, 20)
      : this.rng.chance(0.03)
      ? this.rng.int(300, 2000)
      : this.rng.int(10, 150);
    const done = Math.max(node.diskDone, this.time + latency);
    node.diskDone = done;
    node.queue.push({ rd, done });
    this.#schedule({ kind: Kind.Disk, node: node.idx, inc: node.inc, time: done, seq: 0 });
  }

  /** The FSM tells the core how far it applied: now, or (sometimes) a little later. */
  #ackApplied(node: SimNode, core: RaftCore): void {
    const index = node.fsm.applied;
    if (this.rng.chance(this.p.pAckLate)) {
      this.#schedule({
        kind: Kind.ApplyAck,
        node: node.idx,
        inc: node.inc,
        index,
        time: this.time + this.rng.int(0, 2 * TICK),
        seq: 0,
      });
      return;
    }
    core.appliedTo(index);
  }

  /**
   * A read of durable entries `load.lo..load.hi` from the disk, answered
   * after a delay: read either now or when it answers (a driver may read at
   * any point in between), so the log may have been truncated, compacted or
   * replaced by a snapshot meanwhile. Sometimes it fails, comes back short,
   * or never answers.
   */
  #askLoad(node: SimNode, load: LogLoad): void {
    if (this.rng.chance(this.p.pLoadLost)) {
      this.#tr(`${node.id} load #${load.id} ${load.lo}..${load.hi} lost`);
      return;
    }
    const readNow = this.rng.chance(0.5);
    this.#schedule({
      kind: Kind.Load,
      node: node.idx,
      inc: node.inc,
      load,
      entries: readNow ? this.#readDisk(node, load) : undefined,
      time: this.time + this.rng.int(0, this.p.loadDelayMax),
      seq: 0,
    });
  }

  #readDisk(node: SimNode, load: LogLoad): Entry[] {
    if (this.rng.chance(this.p.pLoadFail)) return [];
    const disk = node.disk;
    const out: Entry[] = [];
    let bytes = 0;
    let hi = load.hi;
    if (this.rng.chance(this.p.pLoadShort)) hi = this.rng.int(load.lo, load.hi);
    for (let i = Math.max(load.lo, disk.start); i <= Math.min(hi, disk.lastIndex()); i++) {
      const e = disk.log[i - disk.start];
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > load.maxBytes) break;
      out.push(e);
    }
    // A store returns what it holds of the range: a compacted prefix is missing.
    return out;
  }

  #answerLoad(ev: SimEvent): void {
    const node = this.nodes[ev.node];
    if (!node.up || node.inc !== ev.inc) return;
    const load = ev.load!;
    const entries = ev.entries ?? this.#readDisk(node, load);
    this.#tr(
      `${node.id} load #${load.id} ${load.lo}..${load.hi} -> ${
        entries.length === 0 ? "nothing" : `${entries[0].index}..${entries.at(-1)!.index}`
      }`,
    );
    node.core!.loaded(load.id, entries);
    this.#drain(node);
  }

  /** Apply up to `limit` writes of `rd` to the disk (snapshot, entries, hard state, in that order). */
  #persist(node: SimNode, rd: Ready, limit: number): void {
    let ops = limit;
    const disk = node.disk;
    if (rd.snapshot) {
      if (ops-- <= 0) return;
      const data = node.snapData.get(rd.snapshot.index);
      if (!data) {
        throw new Error(
          `${node.id}: snapshot data ${rd.snapshot.index} vanished before persisting`,
        );
      }
      disk.installSnapshot(rd.snapshot, data);
    }
    if (rd.entries.length > 0) {
      if (ops <= 0) return;
      const n = Math.min(ops, rd.entries.length);
      disk.appendAt(rd.entries, n);
      const first = rd.entries[0].index;
      const prev = first - 1 >= disk.start
        ? disk.log[first - 1 - disk.start].term
        : disk.snapshot?.meta.index === first - 1
        ? disk.snapshot.meta.term
        : undefined;
      this.checker.entriesAppended(
        node.id,
        prev,
        n === rd.entries.length ? rd.entries : rd.entries.slice(0, n),
      );
      ops -= n;
      if (n < rd.entries.length) return;
    }
    if (rd.hardState) {
      if (ops-- <= 0) return;
      // Commit alone may be written lazily: sometimes skip such a write.
      if (rd.mustSync || !this.rng.chance(0.3)) disk.hardState = { ...rd.hardState };
    }
  }

  #ack(node: SimNode, e: Entry, prop: Proposal): void {
    this.stats.writesAcked++;
    this.acked.set(prop.writeId, e.index);
    if (e.index > this.ackedMax[prop.key]) this.ackedMax[prop.key] = e.index;
    this.#tr(`${node.id} ack write w${prop.writeId} key=${prop.key} at ${e.index}/${e.term}`);
  }

  #serveReads(node: SimNode): void {
    let kept = 0;
    for (const id of node.waiting) {
      const read = node.reads.get(id);
      if (!read) continue;
      if (read.index > node.fsm.applied) {
        node.waiting[kept++] = id;
        continue;
      }
      node.reads.delete(id);
      this.stats.readsServed++;
      if (read.lease) this.stats.leaseReads++;
      const value = node.fsm.read(read.key);
      const got = value?.index ?? 0;
      this.#tr(
        `${node.id} read r${id} key=${read.key} lease=${read.lease} at ${read.index} -> ${
          value ? `w${value.writeId}@${got}` : "empty"
        } (needs >= ${read.required})`,
      );
      if (got < read.required) {
        this.checker.fail(
          `linearizability: ${node.id} ${
            read.lease ? "lease" : "ReadIndex"
          } read r${id} of key ${read.key} (issued at step ${read.issuedStep}, read index ${read.index}) returned the write at index ${got}, but the write at index ${read.required} was acknowledged before the read was issued`,
        );
        return;
      }
    }
    node.waiting.length = kept;
  }

  #maybeSnapshot(node: SimNode, core: RaftCore): void {
    const applied = node.fsm.applied;
    if (applied - node.lastSnapshot < this.p.snapshotEvery) return;
    // A snapshot is durable at once; it must not get ahead of a queued write
    // that installs a snapshot or rewrites the log at or below its index, or a
    // crash would leave it beside a stale log. Writes beyond it may be pending.
    for (const w of node.queue) {
      if (w.rd.snapshot || (w.rd.entries.length > 0 && w.rd.entries[0].index <= applied)) return;
    }
    const term = core.termAt(applied);
    if (term === undefined) {
      throw new Error(`${node.id}: no term known at applied index ${applied}`);
    }
    const conf = core.configurationAt(applied);
    const meta: SnapshotMeta = {
      index: applied,
      term,
      configuration: conf.configuration,
      configurationIndex: conf.index,
    };
    const data = node.fsm.snapshot();
    node.disk.saveSnapshot(meta, data);
    node.snapData.set(applied, data);
    node.lastSnapshot = applied;
    core.snapshotTaken(meta);
    this.stats.snapshotsTaken++;
    const target = Math.min(
      applied - this.p.snapshotTrailing,
      core.compactionFloor(),
      node.disk.lastIndex(),
    );
    if (target >= node.disk.start) {
      core.compact(target);
      node.disk.compactTo(target);
    }
    if (node.snapData.size > 8) {
      const keep = new Set([
        applied,
        core.snapshotMeta?.index ?? 0,
        node.disk.snapshot?.meta.index ?? 0,
      ]);
      for (const k of [...node.snapData.keys()]) if (!keep.has(k)) node.snapData.delete(k);
    }
    this.#tr(`${node.id} snapshot at ${applied}/${term}, compacted to ${target}`);
  }

  #checkNode(node: SimNode, core: RaftCore): void {
    const checker = this.checker;
    if (core.term > this.stats.maxTerm) this.stats.maxTerm = core.term;
    if (core.state === "leader") {
      checker.leaderElected(node.id, core.term);
      if (node.leaderTerm !== core.term) {
        node.leaderTerm = core.term;
        this.stats.elections++;
        checker.leaderCompleteness(core);
        // Storms cut a fresh leader off from some peers at once, so its first
        // entries reach only a few (the situations of the paper's Figure 8).
        if (this.p.storm && this.step <= this.chaosSteps && this.rng.chance(0.3)) {
          this.#cutOff(node);
        }
      }
    }
    const commit = core.commitIndex;
    if (commit < node.lastCommitSeen) {
      checker.fail(`commit index of ${node.id} went back from ${node.lastCommitSeen} to ${commit}`);
      return;
    }
    if (commit > node.lastCommitSeen) {
      for (let i = node.lastCommitSeen + 1; i <= commit; i++) {
        const t = core.termAt(i);
        if (t !== undefined) {
          checker.committed(node.id, i, t, core.entryAt(i), core.term, this.#cores());
        }
      }
      node.lastCommitSeen = commit;
    }
  }

  *#cores(): Generator<RaftCore> {
    for (const n of this.nodes) if (n.up) yield n.core!;
  }

  // ------------------------------------------------------------- network

  #send(from: SimNode, m: Message): void {
    this.stats.messages++;
    const to = this.index.get(m.to);
    if (to === undefined) return;
    let data: FsmSnapshot | undefined;
    if (m.type === "snapshot") {
      data = from.snapData.get(m.meta.index);
      if (!data) {
        throw new Error(`${from.id}: sends snapshot ${m.meta.index} whose data it does not have`);
      }
    }
    if (this.trace) this.#tr(`${from.id} -> ${m.to} ${describeMessage(m)}`);
    if (this.rng.chance(this.lossRate)) {
      this.#lost(from.idx, from.inc, m, "lost");
      return;
    }
    const ev: SimEvent = {
      kind: Kind.Deliver,
      node: to,
      inc: 0,
      msg: m,
      from: from.idx,
      fromInc: from.inc,
      data,
      time: this.time + this.#delay(),
      seq: 0,
    };
    this.#schedule(ev);
    if (this.rng.chance(this.dupRate)) {
      this.#schedule({ ...ev, dup: true, time: this.time + this.#delay() });
    }
  }

  #delay(): number {
    if (this.rng.chance(this.slowRate)) return this.rng.int(100, 1500);
    return this.rng.int(this.p.delayMin, this.p.delayMax);
  }

  #lost(fromIdx: number, fromInc: number, m: Message, why: string): void {
    if (this.trace) this.#tr(`   ${why}: ${m.from} -> ${m.to} ${m.type}`);
    if (m.type === "snapshot") {
      this.#schedule({
        kind: Kind.Report,
        node: fromIdx,
        inc: fromInc,
        peer: m.to,
        ok: false,
        time: this.time + this.rng.int(1, 3 * TICK),
        seq: 0,
      });
    } else if (m.type === "append" && this.rng.chance(0.3)) {
      this.#schedule({
        kind: Kind.Report,
        node: fromIdx,
        inc: fromInc,
        peer: m.to,
        time: this.time + this.rng.int(1, TICK),
        seq: 0,
      });
    }
  }

  #deliver(ev: SimEvent): void {
    const m = ev.msg!;
    const node = this.nodes[ev.node];
    const from = ev.from!;
    if (!node.up || this.blocked[from * this.nodes.length + node.idx] > 0) {
      if (!ev.dup) this.#lost(from, ev.fromInc!, m, node.up ? "blocked" : "receiver down");
      return;
    }
    if (this.trace) {
      this.#tr(`${node.id} <- ${m.from} ${describeMessage(m)}${ev.dup ? " (dup)" : ""}`);
    }
    if (m.type === "snapshot") node.snapData.set(m.meta.index, ev.data!);
    node.core!.step(m);
    this.#drain(node);
    if (m.type === "snapshot" && !ev.dup) {
      this.#schedule({
        kind: Kind.Report,
        node: from,
        inc: ev.fromInc!,
        peer: m.to,
        ok: true,
        time: this.time + this.rng.int(1, 20),
        seq: 0,
      });
    }
  }

  #block(pairs: Array<[number, number]>, delta: number): void {
    const n = this.nodes.length;
    for (const [a, b] of pairs) this.blocked[a * n + b] += delta;
  }

  // ------------------------------------------------------------- steps

  #onStep(): void {
    this.step++;
    for (const node of this.nodes) {
      if (!node.up && node.restartStep >= 0 && node.restartStep <= this.step) {
        node.restartStep = -1;
        this.#start(node, undefined);
      }
    }
    if (this.partitions.length > 0) {
      this.partitions = this.partitions.filter((part) => {
        if (part.until > this.step) return true;
        this.#block(part.pairs, -1);
        this.#tr(
          `heal partition ${
            part.pairs.map(([a, b]) => `${this.nodes[a].id}>${this.nodes[b].id}`).join(" ")
          }`,
        );
        return false;
      });
    }
    if (this.step % 25 === 0) this.#fullCheck();
    if (this.checker.violation !== undefined) return;
    if (this.step <= this.chaosSteps) this.#chaos();
    else this.#heal();
  }

  #fullCheck(): void {
    const up = this.nodes.filter((n) => n.up);
    for (let i = 0; i < up.length; i++) {
      for (let j = i + 1; j < up.length; j++) this.checker.compareLogs(up[i].core!, up[j].core!);
    }
  }

  #leaders(): SimNode[] {
    return this.nodes.filter((n) => n.up && n.core!.state === "leader");
  }

  #chaos(): void {
    const r = this.rng;
    const p = this.p;
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return;
    if (r.chance(p.pWrite)) this.#clientWrite(up, r.int(1, 3));
    if (r.chance(p.pRead)) this.#clientRead();
    if (r.chance(p.pConf)) this.#membershipChange();
    if (r.chance(p.pTransfer)) this.#transfer();
    if (p.storm && r.chance(0.08)) this.#partition(true);
    else if (r.chance(p.pPartition)) this.#partition(false);
    if (r.chance(p.pCrash) || (p.storm && r.chance(0.04))) {
      const down = this.nodes.length - up.length;
      if (down < Math.ceil(p.n / 2)) {
        const leaders = this.#leaders();
        const victim = leaders.length > 0 && r.chance(0.4) ? r.pick(leaders) : r.pick(up);
        this.#crash(victim);
        victim.restartStep = this.step + (p.storm ? r.int(1, 8) : r.int(2, 40));
      }
    }
    if (r.chance(p.pPowerLoss)) {
      this.#tr("POWER LOSS: every node crashes");
      const back = this.step + r.int(2, 15);
      for (const node of up) {
        this.#crash(node);
        node.restartStep = back;
      }
    }
  }

  #clientWrite(up: SimNode[], count: number): void {
    const leaders = this.#leaders();
    const node = leaders.length > 0 && this.rng.chance(0.9)
      ? this.rng.pick(leaders)
      : this.rng.pick(up);
    const core = node.core!;
    const data: Uint8Array[] = [];
    const writes: Array<{ writeId: number; key: number }> = [];
    for (let i = 0; i < count; i++) {
      const writeId = this.nextWriteId++;
      const key = this.rng.int(0, KEYS - 1);
      writes.push({ writeId, key });
      data.push(encodeWrite(writeId, key));
    }
    try {
      const { index, term } = core.propose(data);
      for (let i = 0; i < count; i++) node.proposals.set(index + i, { term, ...writes[i] });
      this.stats.writesProposed += count;
      this.#tr(
        `${node.id} propose ${writes.map((w) => `w${w.writeId}`).join(",")} at ${index}/${term}`,
      );
    } catch (e) {
      if (!(e instanceof NotLeaderError || e instanceof LeadershipTransferError)) throw e;
      this.#tr(`${node.id} propose refused: ${(e as Error).name}`);
      return;
    }
    this.#drain(node);
  }

  #clientRead(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const node = this.rng.pick(leaders);
    const id = this.nextReadId++;
    const key = this.rng.int(0, KEYS - 1);
    const lease = this.rng.chance(0.5);
    node.reads.set(id, {
      key,
      required: this.ackedMax[key],
      lease,
      index: Infinity,
      issuedStep: this.step,
    });
    this.#tr(
      `${node.id} readIndex r${id} key=${key} lease=${lease} (acked write at ${
        this.ackedMax[key]
      })`,
    );
    try {
      node.core!.readIndex(id, lease);
    } catch (e) {
      node.reads.delete(id);
      if (!(e instanceof NotLeaderError)) throw e;
      return;
    }
    this.#drain(node);
  }

  #membershipChange(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const node = this.rng.pick(leaders);
    const core = node.core!;
    const latest = core.latestConfiguration();
    const servers = latest.configuration.servers;
    const members = new Set(servers.map((s) => s.id));
    const outside = this.p.ids.filter((id) => !members.has(id));
    const voters = servers.filter((s) => s.suffrage === "voter");
    const others = servers.filter((s) => s.suffrage !== "voter");
    const options: ConfigurationChange[] = [];
    for (const id of outside) {
      options.push({ op: "addVoter", id, address: `addr-${id}` });
      options.push({ op: "addNonvoter", id, address: `addr-${id}` });
    }
    for (const s of others) {
      options.push({ op: "promote", id: s.id });
      options.push({ op: "addVoter", id: s.id, address: s.address });
      options.push({ op: "remove", id: s.id });
    }
    // Keep at least two voters most of the time so the cluster stays
    // available; storms often go down to one (a single voter elects itself
    // without any vote request, a path of its own).
    if (voters.length > 2 || this.rng.chance(this.p.storm ? 0.7 : 0.2)) {
      for (const s of voters) {
        options.push({ op: "demote", id: s.id });
        options.push({ op: "remove", id: s.id });
      }
    }
    if (options.length === 0) return;
    const change = this.rng.pick(options);
    const prevIndex = this.rng.chance(0.1) ? latest.index + this.rng.int(-1, 1) : 0;
    try {
      const { index } = core.proposeConfigurationChange(change, prevIndex);
      this.stats.configChanges++;
      this.#tr(`${node.id} propose ${change.op} ${change.id} at ${index}`);
    } catch (e) {
      if (
        !(e instanceof ConfigurationError || e instanceof NotLeaderError ||
          e instanceof LeadershipTransferError)
      ) throw e;
      this.#tr(`${node.id} ${change.op} ${change.id} refused: ${(e as Error).message}`);
      return;
    }
    this.#drain(node);
  }

  #transfer(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const node = this.rng.pick(leaders);
    const core = node.core!;
    const voters = core.latestConfiguration().configuration.servers.filter((s) =>
      s.suffrage === "voter" && s.id !== node.id
    );
    const target = voters.length > 0 && this.rng.chance(0.7) ? this.rng.pick(voters).id : undefined;
    try {
      const to = core.transferLeadership(target);
      this.stats.transfers++;
      this.#tr(`${node.id} transfer leadership to ${to}`);
    } catch (e) {
      if (!(e instanceof LeadershipTransferError || e instanceof NotLeaderError)) throw e;
      this.#tr(`${node.id} transfer refused: ${(e as Error).message}`);
      return;
    }
    this.#drain(node);
  }

  #cutOff(node: SimNode): void {
    const pairs: Array<[number, number]> = [];
    for (const other of this.nodes) {
      if (other === node || !this.rng.chance(0.6)) continue;
      pairs.push([node.idx, other.idx]);
      if (this.rng.chance(0.5)) pairs.push([other.idx, node.idx]);
    }
    if (pairs.length === 0) return;
    this.stats.partitions++;
    const until = this.step + this.rng.int(1, 8);
    this.partitions.push({ until, pairs });
    this.#block(pairs, 1);
    this.#tr(
      `CUT OFF new leader until s${until}: ${
        pairs.map(([a, b]) => `${this.nodes[a].id}>${this.nodes[b].id}`).join(" ")
      }`,
    );
  }

  #partition(storm: boolean): void {
    const r = this.rng;
    const all = this.nodes.map((n) => n.idx);
    const pairs: Array<[number, number]> = [];
    const kind = storm ? (r.chance(0.7) ? 0 : 1) : r.int(0, 2);
    let side: Set<number>;
    if (kind === 2) {
      // One-way: some directed links fail.
      const links = r.int(1, 4);
      for (let i = 0; i < links; i++) {
        const a = r.pick(all);
        const b = r.pick(all);
        if (a !== b) pairs.push([a, b]);
      }
    } else {
      if (kind === 0) {
        const leaders = this.#leaders();
        side = new Set(leaders.length > 0 ? [r.pick(leaders).idx] : [r.pick(all)]);
      } else {
        side = new Set(all.filter(() => r.chance(0.5)));
      }
      for (const a of all) {
        for (const b of all) if (side.has(a) !== side.has(b)) pairs.push([a, b]);
      }
    }
    if (pairs.length === 0) return;
    this.stats.partitions++;
    const until = this.step + (storm ? r.int(2, 12) : r.int(5, 60));
    this.partitions.push({ until, pairs });
    this.#block(pairs, 1);
    this.#tr(
      `PARTITION until s${until}: ${
        pairs.map(([a, b]) => `${this.nodes[a].id}>${this.nodes[b].id}`).join(" ")
      }`,
    );
  }

  // ------------------------------------------------------------- healing

  #heal(): void {
    if (this.healStart < 0) {
      this.healStart = this.step;
      this.#tr("HEAL: faults stop, every node restarts, partitions heal");
      for (const part of this.partitions) this.#block(part.pairs, -1);
      this.partitions = [];
      this.lossRate = 0;
      this.dupRate = 0;
      this.slowRate = 0;
      for (const node of this.nodes) {
        if (node.diskMode === "slow") node.diskMode = "fast";
        if (!node.up) {
          node.restartStep = -1;
          this.#start(node, undefined);
        }
      }
      // A follower far behind catches up at a finite rate: allow a few steps
      // per missing entry. Measured once every node is back up: a node down at
      // this point (a power loss just before healing) may hold the longest log.
      let last = 0;
      let applied = Infinity;
      for (const node of this.nodes) {
        last = Math.max(last, node.core!.lastIndex);
        if (node.core!.latestConfiguration().index > 0) {
          applied = Math.min(applied, node.fsm.applied);
        }
      }
      this.healBound = this.healSteps +
        3 * Math.max(0, last - (applied === Infinity ? 0 : applied));
      return;
    }
    const leaders = this.#leaders();
    let leader: SimNode | undefined;
    for (const l of leaders) if (!leader || l.core!.term > leader.core!.term) leader = l;
    const fw = this.finalWrite;
    if (fw === undefined || (!this.acked.has(fw.writeId) && this.#finalLost(fw))) {
      if (leader && leader.core!.committedInCurrentTerm()) {
        const writeId = this.nextWriteId++;
        const key = this.rng.int(0, KEYS - 1);
        try {
          const { index, term } = leader.core!.propose([encodeWrite(writeId, key)]);
          leader.proposals.set(index, { term, writeId, key });
          this.stats.writesProposed++;
          this.finalWrite = { node: leader.idx, inc: leader.inc, writeId, index, term };
          this.#tr(`${leader.id} propose final write w${writeId} at ${index}/${term}`);
          this.#drain(leader);
        } catch (e) {
          if (!(e instanceof NotLeaderError || e instanceof LeadershipTransferError)) throw e;
        }
      }
    } else if (this.acked.has(fw.writeId) && leader) {
      const index = this.acked.get(fw.writeId)!;
      const members = leader.core!.latestConfiguration().configuration.servers;
      const behind = members.filter((s) => {
        const n = this.nodes[this.index.get(s.id)!];
        return !n.up || n.fsm.applied < index;
      });
      if (behind.length === 0) {
        this.#checkAckedWrites();
        this.done = true;
        this.#tr(`DONE: every member applied the final write at ${index}`);
        return;
      }
    }
    if (this.step - this.healStart > this.healBound) {
      const state = this.nodes.map((n) =>
        n.up
          ? `${n.id}:${n.core!.state}/t${n.core!.term}/c${n.core!.commitIndex}/a${n.fsm.applied}/l${
            n.core!.lastIndex
          }/cfg${describeConfig(n.core!)}`
          : `${n.id}:down`
      ).join(" ");
      this.checker.fail(
        `liveness: ${this.healBound} steps after healing, ${
          leader ? `leader ${leader.id}` : "no leader"
        } and the final write ${
          fw
            ? `w${fw.writeId} (index ${fw.index}, acked=${this.acked.has(fw.writeId)})`
            : "not proposed"
        } is not applied on every member [${state}]`,
      );
    }
  }

  #finalLost(fw: { node: number; inc: number; term: number }): boolean {
    const n = this.nodes[fw.node];
    return !n.up || n.inc !== fw.inc || n.core!.state !== "leader" || n.core!.term !== fw.term;
  }

  #checkAckedWrites(): void {
    for (const [writeId, index] of this.acked) {
      const e = this.checker.appliedAt(index);
      if (!e || e.type !== EntryType.Normal || decodeWrite(e.data).writeId !== writeId) {
        this.checker.fail(
          `durability: acknowledged write w${writeId} at index ${index} is not what was applied there`,
        );
        return;
      }
    }
  }
}

function describeConfig(core: RaftCore): string {
  const latest = core.latestConfiguration();
  const servers = latest.configuration.servers.map((s) =>
    `${s.id}${s.suffrage === "voter" ? "" : `(${s.suffrage})`}`
  );
  return `@${latest.index}[${servers.join(",")}]`;
}

/**
 * One line describing a message, for traces.
 *
 * @example
 * ```ts
 * import { describeMessage } from "./simulation.ts";
 * console.log(describeMessage({ type: "timeout_now", term: 3, from: "n1", to: "n2" })); // "timeout_now t3"
 * ```
 */
export function describeMessage(m: Message): string {
  switch (m.type) {
    case "vote":
      return `${m.preVote ? "prevote" : "vote"} t${m.term} last=${m.lastLogIndex}/${m.lastLogTerm}${
        m.leadershipTransfer ? " transfer" : ""
      }`;
    case "vote_resp":
      return `${m.preVote ? "prevote" : "vote"}_resp t${m.term} ${
        m.granted ? "granted" : "rejected"
      }`;
    case "append": {
      const n = m.entries.length;
      const ents = n === 0 ? "" : ` ents=${m.entries[0].index}..${m.entries[n - 1].index}`;
      return `append t${m.term} prev=${m.prevIndex}/${m.prevTerm}${ents} commit=${m.commit}`;
    }
    case "append_resp":
      return `append_resp t${m.term} ${m.success ? "ok" : "reject"} index=${m.index}${
        m.success ? "" : ` hint=${m.hintIndex}/${m.hintTerm}`
      }`;
    case "heartbeat":
      return `heartbeat t${m.term} commit=${m.commit} ctx=${m.context}`;
    case "heartbeat_resp":
      return `heartbeat_resp t${m.term} ctx=${m.context}`;
    case "snapshot":
      return `snapshot t${m.term} at ${m.meta.index}/${m.meta.term}`;
    case "timeout_now":
      return `timeout_now t${m.term}`;
  }
}
