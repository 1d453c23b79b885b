/**
 * Deterministic simulation of whole raftd nodes: each server runs the real
 * `Raft` (the real driver) on the real file stores over a simulated disk,
 * the real wire codec over a simulated network, and the daemon's KV state
 * machine, all on one virtual clock and scheduler driven by one seed.
 *
 * Clients run KV operations (puts, compare-and-sets, deletes, reads through
 * `readIndex`, leases and barriers), membership changes, leadership
 * transfers, snapshots and restores, with timeouts and aborts, while the
 * run injects faults: crashes and power losses (unsynced writes lost, torn
 * writes), disk faults (EIO, ENOSPC, slow fsync), partitions, loss,
 * duplication, reordering, clock drift, process pauses and event-loop
 * stalls. The invariants (see `checker.ts`) are checked after every event;
 * then the faults heal, a final write must reach every member (liveness), the
 * members' state machines must agree, and the client history must be
 * linearizable. What is not KV is checked as it answers: a read point, a
 * lease read or `verifyLeader()` must not confirm a leader deposed before it
 * was asked, a leadership transfer reported done needs another leader since,
 * and no client entry may be applied where a membership change was
 * acknowledged. The same seed replays the same run, event for event.
 *
 * @module
 */

import { type Config, DEFAULT_CONFIG } from "../../src/config.ts";
import type { Configuration } from "../../src/core/types.ts";
import { Checker } from "./checker.ts";
import { checkKvHistory } from "./kv_model.ts";
import { mix32, Prng } from "./prng.ts";
import { type EventLoop, Scheduler } from "./scheduler.ts";
import { SimNetwork } from "./sim_network.ts";
import { SimServer } from "./sim_server.ts";
import { type OperationMix, Workload, type WorkloadStats } from "./workload.ts";

/** Virtual milliseconds per simulation step. */
export const STEP_MS = 100;

/** Steps a server restarted at healing may take to open its stores before the catch-up allowance is measured without it. */
const MAX_START_STEPS = 100;

/** Entries per step a lagging member is owed at most after healing (the rate the allowance assumed for every configuration). */
const MAX_CATCHUP_PER_STEP = 3;

/**
 * Milliseconds one append round costs beyond the network's two ways on the
 * slowest disk the run draws after healing: the follower's fsync (5–40 ms,
 * and 2% of them 200–2000 ms: 45 ms on average) plus the leader's read of
 * entries older than its cache and both sides' store calls.
 */
const APPEND_ROUND_DISK_MS = 60;

/** Network delay at most, one way, once faults heal. */
const HEALED_DELAY_MAX_MS = 20;

/** More events queued at once than this is a storm (messages multiplying), not a cluster at work. */
const MAX_QUEUED = 100_000;

/** What to simulate. */
export interface SimOptions {
  /** The seed; every random choice derives from it. */
  seed: number;
  /** Voters at start: 3 or 5 (two spare servers can join). Default: 3 for even seeds, 5 for odd. */
  nodes?: number;
  /** Steps (of {@linkcode STEP_MS}) of the chaotic phase before faults heal. Default 150. */
  steps?: number;
  /** Steps allowed after healing for the final write to reach every member (plus a catch-up allowance). Default 300. */
  healSteps?: number;
  /** Inject faults. Default true. */
  faults?: boolean;
  /** Receives a readable line for every notable event when set. */
  trace?: (line: string) => void;
  /** Changes the seed's choices before the run starts (targeted tests). */
  adjust?: (params: SimParams) => void;
  /** Planted bugs, for tests that prove the checks can fail. */
  plant?: {
    /** Serve reads from the local state machine without a read index (stale reads). */
    staleReads?: boolean;
    /** Every disk acknowledges fsync without writing anything (acknowledged writes lost on power loss). */
    lyingDisks?: boolean;
  };
}

/** Counters of one run. */
export interface SimStats extends WorkloadStats {
  /** Distinct terms that had a leader. */
  elections: number;
  /** Highest term reached. */
  maxTerm: number;
  /** Highest index seen committed. */
  committed: number;
  /** Process crashes (kill -9). */
  crashes: number;
  /** Power losses (unsynced writes lost). */
  powerLosses: number;
  /** Clean shutdowns. */
  shutdowns: number;
  /** Process pauses. */
  pauses: number;
  /** Event-loop stalls. */
  stalls: number;
  /** Partitions started. */
  partitions: number;
  /** Disk faults injected (EIO, ENOSPC). */
  diskFaults: number;
  /** Slow-disk episodes. */
  slowDisks: number;
  /** Processes that stopped themselves (storage failures) or could not start. */
  selfStops: number;
  /** Writes torn by power losses. */
  tornWrites: number;
  /** State machine restores from snapshots (installs from a leader, restarts, user restores). */
  fsmRestores: number;
  /** Messages handed to the network. */
  messages: number;
}

/** Outcome of one run. */
export interface SimResult {
  /** The seed. */
  seed: number;
  /** Voters at start. */
  nodes: number;
  /** Steps simulated. */
  steps: number;
  /** Events processed. */
  events: number;
  /** KV operations checked for linearizability. */
  clientOps: number;
  /** The first violation, if any. */
  violation?: string;
  /** Counters. */
  stats: SimStats;
}

/** Everything a seed decides about its run; tests may adjust it (see {@linkcode SimOptions.adjust}). */
export interface SimParams {
  /** Voters at start. */
  n: number;
  /** Server ids: the voters, then two spares. */
  ids: string[];
  /** Raft configuration of every node. */
  raft: Omit<Config, "id" | "random">;
  /** Concurrent clients. */
  clients: number;
  /** Keys they use. */
  keys: number;
  /** What they do. */
  mix: OperationMix;
  /** Message loss probability. */
  loss: number;
  /** Message duplication probability. */
  duplicate: number;
  /** Probability that a message escapes per-link order. */
  reorder: number;
  /** Least message delay (ms). */
  delayMin: number;
  /** Most message delay (ms). */
  delayMax: number;
  /** Largest clock rate error of a machine. */
  drift: number;
  /** Per-step probabilities of faults. */
  pCrash: number;
  /** Power loss of every machine. */
  pPowerLoss: number;
  /** Clean shutdown and restart. */
  pShutdown: number;
  /** Process pause (SIGSTOP). */
  pPause: number;
  /** Event-loop stall. */
  pStall: number;
  /** A partition. */
  pPartition: number;
  /** A disk fault (EIO, ENOSPC). */
  pDiskFault: number;
  /** A slow-disk episode. */
  pSlowDisk: number;
  /** A bad-network episode. */
  pBadNetwork: number;
}

interface Partition {
  until: number;
  apply: (net: SimNetwork) => void;
  describe: string;
}

/**
 * Run one seeded simulation.
 *
 * @example
 * ```ts
 * import { runSimulation } from "./simulation.ts";
 * const result = await runSimulation({ seed: 1, steps: 50 });
 * console.log(result.violation ?? "ok", result.clientOps);
 * ```
 */
export async function runSimulation(options: SimOptions): Promise<SimResult> {
  return await new Simulation(options).run();
}

/** The simulation whose unhandled rejections are being watched (one runs at a time per thread). */
let current: Simulation | undefined;
let listening = false;

function onUnhandledRejection(e: PromiseRejectionEvent): void {
  e.preventDefault();
  const reason = e.reason instanceof Error ? e.reason.stack ?? e.reason.message : String(e.reason);
  current?.checker.fail(`unhandled promise rejection (it would crash the process): ${reason}`);
}

class Simulation {
  readonly seed: number;
  readonly rng: Prng;
  readonly p: SimParams;
  readonly checker = new Checker();
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly servers: SimServer[] = [];
  readonly workload: Workload;
  readonly #trace: ((line: string) => void) | undefined;
  readonly #byLoop = new Map<EventLoop, SimServer>();
  readonly chaosSteps: number;
  readonly healSteps: number;
  readonly faults: boolean;
  readonly plant: NonNullable<SimOptions["plant"]>;
  readonly maxEvents: number;
  readonly stats: SimStats;
  step = 0;
  done = false;
  partitions: Partition[] = [];
  restartAt = new Map<SimServer, number>();
  slowUntil = new Map<SimServer, number>();
  badNetworkUntil = 0;
  healStart = -1;
  healBound = 0;
  healLast = 0;
  healApplied = Infinity;
  healPending = new Set<SimServer>();
  final: { inFlight: boolean; index?: number; tries: number } = { inFlight: false, tries: 0 };

  constructor(options: SimOptions) {
    this.seed = options.seed;
    this.rng = new Prng(options.seed);
    this.#trace = options.trace;
    this.chaosSteps = options.steps ?? 150;
    this.healSteps = options.healSteps ?? 300;
    this.faults = options.faults ?? true;
    this.plant = options.plant ?? {};
    const n = options.nodes ?? (options.seed % 2 === 0 ? 3 : 5);
    if (n < 1 || n > 7) throw new RangeError(`nodes must be between 1 and 7, got ${n}`);
    this.p = this.#chooseParams(n);
    options.adjust?.(this.p);
    this.maxEvents = 20_000 * (this.chaosSteps + this.healSteps) + 100_000;
    const loopRng = this.rng.fork();
    this.scheduler = new Scheduler({
      random: () => loopRng.float(),
      onError: (error, loop) =>
        this.checker.fail(
          `uncaught exception on ${loop.name} (it would crash the process): ${
            error instanceof Error ? error.stack ?? error.message : String(error)
          }`,
        ),
    });
    const netRng = this.rng.fork();
    this.network = new SimNetwork(this.scheduler, {
      random: () => netRng.float(),
      chunkDelay: (bytes) => 1 + Math.floor(bytes / 512),
    });
    const ctx = {
      scheduler: this.scheduler,
      network: this.network,
      checker: this.checker,
      trace: (line: string) => this.trace(line),
    };
    for (const id of this.p.ids) {
      const serverRng = this.rng.fork();
      const drift = this.faults ? (serverRng.float() * 2 - 1) * this.p.drift : 0;
      const wallEpochMs = Date.UTC(2024, 0, 1) + serverRng.int(-120_000, 120_000);
      this.servers.push(new SimServer(ctx, id, () => serverRng.float(), { drift, wallEpochMs }));
    }
    this.workload = new Workload({ ...ctx, servers: this.servers }, this.rng.fork(), {
      clients: this.p.clients,
      keys: this.p.keys,
      mix: this.p.mix,
      members: n,
      staleReads: this.plant.staleReads ?? false,
    });
    this.stats = {
      ...this.workload.stats,
      elections: 0,
      maxTerm: 0,
      committed: 0,
      crashes: 0,
      powerLosses: 0,
      shutdowns: 0,
      pauses: 0,
      stalls: 0,
      partitions: 0,
      diskFaults: 0,
      slowDisks: 0,
      selfStops: 0,
      tornWrites: 0,
      fsmRestores: 0,
      messages: 0,
    };
  }

  trace(line: string): void {
    if (this.#trace) {
      this.#trace(`${String(Math.floor(this.scheduler.now)).padStart(7)} s${this.step} ${line}`);
    }
  }

  #chooseParams(n: number): SimParams {
    const r = this.rng;
    const f = this.faults;
    const heartbeatInterval = r.pick([50, 100, 100, 200, 200]);
    const mix: OperationMix = {
      put: 30,
      cas: 12,
      delete: 4,
      read: 16,
      leaseRead: r.pick([0, 12]),
      barrierRead: 5,
      verifyLeader: 3,
      snapshot: r.pick([0, 2]),
      restore: r.pick([0, 0, 0.5]),
      membership: f ? r.pick([0, 2, 5]) : 0,
      transfer: f ? r.pick([0, 1, 3]) : 0,
    };
    return {
      n,
      ids: Array.from({ length: n + 2 }, (_, i) => `n${i + 1}`),
      raft: {
        heartbeatInterval,
        electionTimeout: heartbeatInterval * r.pick([5, 8, 12]),
        preVote: r.chance(0.9),
        checkQuorum: r.chance(0.9),
        maxAppendEntries: r.pick([1, 4, 64, 512]),
        maxAppendBytes: r.pick([256, 1 << 20]),
        maxInflightAppends: r.pick([1, 2, 16, 128]),
        snapshotThreshold: r.pick([4, 16, 64, 100_000]),
        snapshotInterval: r.pick([0, 500, 5000]),
        trailingLogs: r.pick([0, 2, 32, 1024]),
        retainSnapshots: r.pick([1, 2, 3]),
        catchupMargin: r.pick([0, 4, 64]),
        autoPromoteNonvoters: r.chance(0.3),
        shutdownOnRemove: r.chance(0.5),
        storageTimeout: r.pick([500, 2000, 10_000]),
        maxApplyBatch: r.pick([1, 8, 512]),
        // Drawn from a stream of its own so that every seed recorded before the log cache
        // existed still replays the scenario it was recorded with.
        logCacheBytes: new Prng(mix32(this.seed ^ 0x5eed_cace)).pick([0, 0, 256, 4096, 4 << 20]),
      },
      clients: r.int(2, 6),
      keys: r.pick([1, 2, 4]),
      mix,
      loss: f ? r.pick([0, 0.01, 0.05]) : 0,
      duplicate: f ? r.pick([0, 0.02, 0.1]) : 0,
      reorder: f ? r.pick([0, 0.05, 0.3]) : 0,
      delayMin: r.int(0, 2),
      delayMax: r.pick([2, 5, 20, 60]),
      drift: f ? r.pick([0, 0.01, 0.03]) : 0,
      pCrash: f ? r.pick([0, 0.005, 0.02]) : 0,
      pPowerLoss: f ? r.pick([0, 0.002]) : 0,
      pShutdown: f ? r.pick([0, 0.005]) : 0,
      pPause: f ? r.pick([0, 0.005, 0.02]) : 0,
      pStall: f ? r.pick([0, 0.01]) : 0,
      pPartition: f ? r.pick([0, 0.01, 0.04]) : 0,
      pDiskFault: f ? r.pick([0, 0.003, 0.01]) : 0,
      pSlowDisk: f ? r.pick([0, 0.005]) : 0,
      pBadNetwork: f ? r.pick([0, 0.01]) : 0,
    };
  }

  // ------------------------------------------------------------------ run

  async run(): Promise<SimResult> {
    const p = this.p;
    if (!listening) {
      globalThis.addEventListener("unhandledrejection", onUnhandledRejection);
      listening = true;
    }
    current = this;
    this.trace(
      `params ${JSON.stringify({ ...p, ids: undefined })} drift=${
        this.servers.map((s) => `${s.id}:${s.drift.toFixed(4)}`).join(",")
      }`,
    );
    this.#setNetwork(false);
    for (const s of this.servers) this.#diskTiming(s, false);
    if (this.plant.lyingDisks) {
      for (const s of this.servers) s.fs.lie = true;
    }
    try {
      for (let i = 0; i < this.servers.length; i++) {
        this.#start(this.servers[i]);
      }
      this.workload.start();
      this.scheduler.world.schedule(STEP_MS, () => this.#onStep());
      const scheduler = this.scheduler;
      while (!this.done && this.checker.violation === undefined) {
        const loop = await scheduler.runNext();
        if (loop === undefined) {
          this.checker.fail("simulation: the event queue ran dry");
          break;
        }
        const server = this.#byLoop.get(loop);
        if (server !== undefined) server.poll();
        if (scheduler.events > this.maxEvents) {
          this.checker.fail(
            `simulation: more than ${this.maxEvents} events by step ${this.step}: a message storm or livelock`,
          );
        } else if (scheduler.queued > MAX_QUEUED) {
          this.checker.fail(
            `simulation: more than ${MAX_QUEUED} events queued at step ${this.step}: a message storm`,
          );
        }
      }
      this.workload.finish();
      if (this.checker.violation === undefined) this.#checkHistory();
    } catch (e) {
      this.checker.fail(
        `exception in the simulation at step ${this.step}: ${
          e instanceof Error ? e.stack ?? e.message : String(e)
        }`,
      );
    } finally {
      if (current === this) current = undefined;
    }
    return this.#result();
  }

  #result(): SimResult {
    const stats = this.stats;
    Object.assign(stats, this.workload.stats);
    stats.committed = this.checker.maxCommitted;
    stats.elections = this.checker.leaders.size;
    stats.maxTerm = Math.max(0, ...this.checker.leaders.keys());
    stats.messages = this.network.memory.stats.sent;
    stats.tornWrites = this.servers.reduce((sum, s) => sum + s.fs.stats.tornWrites, 0);
    stats.fsmRestores = this.servers.reduce((sum, s) => sum + s.fsmRestores, 0);
    const result: SimResult = {
      seed: this.seed,
      nodes: this.p.n,
      steps: this.step,
      events: this.scheduler.events,
      clientOps: this.workload.history.length,
      stats,
    };
    if (this.checker.violation !== undefined) result.violation = this.checker.violation;
    return result;
  }

  #checkHistory(): void {
    const verdict = checkKvHistory(this.workload.history, { maxSteps: 2_000_000 });
    if (verdict.result === "ok") return;
    this.checker.fail(
      `linearizability: ${
        verdict.result === "violation"
          ? `the history of key ${verdict.key} is not linearizable`
          : `the check of key ${verdict.key} ran out of budget`
      }\n${verdict.report!.join("\n")}`,
    );
  }

  // ------------------------------------------------------------- servers

  /**
   * Start `server`; a founding server passes the founding configuration on
   * every start, as an operator's script would (it is used only while the
   * disk holds no state, e.g. after a power loss took the first one).
   */
  #start(server: SimServer): void {
    const founders = this.p.ids.slice(0, this.p.n);
    const bootstrap: Configuration | undefined = founders.includes(server.id)
      ? { servers: founders.map((id) => ({ id, address: id, suffrage: "voter" })) }
      : undefined;
    server.start(this.p.raft, bootstrap);
    this.#byLoop.set(server.loop!, server);
  }

  /** Kill the process (and maybe the machine's power), then start it again later. */
  #crash(server: SimServer, powerLoss: boolean, restartInSteps: number): void {
    if (powerLoss) this.stats.powerLosses++;
    else this.stats.crashes++;
    this.#forget(server);
    server.crash(powerLoss);
    this.restartAt.set(server, this.step + restartInSteps);
  }

  #forget(server: SimServer): void {
    if (server.loop !== undefined) this.#byLoop.delete(server.loop);
  }

  #diskTiming(server: SimServer, slow: boolean): void {
    const r = this.rng;
    if (slow) {
      server.fs.timing = { sync: () => r.int(300, 4000), op: () => r.int(0, 20) };
      return;
    }
    const kind = this.faults ? r.pick(["fast", "normal", "slow"] as const) : "fast";
    server.fs.timing = kind === "fast"
      ? { sync: () => r.int(0, 1), op: () => 0 }
      : kind === "normal"
      ? { sync: () => r.int(1, 8), op: () => r.int(0, 1) }
      : { sync: () => (r.chance(0.02) ? r.int(200, 2000) : r.int(5, 40)), op: () => r.int(0, 2) };
  }

  // ------------------------------------------------------------- steps

  #onStep(): void {
    this.step++;
    if (this.checker.violation !== undefined || this.done) return;
    this.scheduler.world.schedule(STEP_MS, () => this.#onStep());
    for (const s of this.servers) {
      if (s.status === "removed" && !this.restartAt.has(s)) {
        // The operator starts a removed server again (it may be added back).
        this.restartAt.set(s, this.step + this.rng.int(5, 30));
      }
      if (s.status === "failed" && !this.restartAt.has(s)) {
        // A process that stopped itself exits; it is started again later on a healthy disk.
        this.stats.selfStops++;
        if (!s.failedUnderDiskFault) {
          this.checker.fail(`${s.id} stopped on a healthy disk: ${s.failure}`);
          return;
        }
        this.restartAt.set(s, this.step + this.rng.int(2, 20));
      }
      const at = this.restartAt.get(s);
      if (at !== undefined && at <= this.step) {
        this.restartAt.delete(s);
        this.#forget(s);
        s.crash(this.rng.chance(0.5));
        this.#healDisk(s);
        this.#start(s);
      }
    }
    this.#expire();
    if (this.step <= this.chaosSteps) this.#chaos();
    else this.#heal();
  }

  #expire(): void {
    const step = this.step;
    const before = this.partitions.length;
    this.partitions = this.partitions.filter((part) => part.until > step);
    if (this.partitions.length !== before) this.#applyPartitions();
    for (const [s, until] of this.slowUntil) {
      if (until <= step) {
        this.slowUntil.delete(s);
        this.#diskTiming(s, false);
        this.trace(`${s.id} disk is fast again`);
      }
    }
    if (this.badNetworkUntil > 0 && this.badNetworkUntil <= step) {
      this.badNetworkUntil = 0;
      this.#setNetwork(false);
    }
  }

  #healDisk(s: SimServer): void {
    s.fs.faults = { syncError: 0, writeError: 0, capacity: Infinity };
  }

  #setNetwork(bad: boolean): void {
    const m = this.network.memory;
    const p = this.p;
    if (bad) {
      m.drop(Math.min(1, p.loss + 0.2));
      m.delay(p.delayMin, p.delayMax + 300);
      m.reorder(Math.min(1, p.reorder + 0.3));
      m.duplicate(Math.min(1, p.duplicate + 0.1));
      return;
    }
    m.drop(p.loss);
    m.delay(p.delayMin, p.delayMax);
    m.reorder(p.reorder);
    m.duplicate(p.duplicate);
  }

  #applyPartitions(): void {
    const m = this.network.memory;
    m.heal();
    for (const part of this.partitions) part.apply(this.network);
  }

  #running(): SimServer[] {
    return this.servers.filter((s) => s.status === "up");
  }

  #leaders(): SimServer[] {
    return this.servers.filter((s) => s.status === "up" && s.raft?.state === "leader");
  }

  #chaos(): void {
    const r = this.rng;
    const p = this.p;
    const up = this.#running();
    const notUp = this.servers.length - up.length;
    const maxDown = Math.ceil(p.n / 2);
    const victim = () => {
      const leaders = this.#leaders();
      return leaders.length > 0 && r.chance(0.4) ? r.pick(leaders) : r.pick(up);
    };
    if (up.length > 0 && notUp < maxDown) {
      if (r.chance(p.pCrash)) this.#crash(victim(), r.chance(0.4), r.int(2, 40));
      else if (r.chance(p.pShutdown)) {
        const s = victim();
        this.stats.shutdowns++;
        s.shutdown();
        this.restartAt.set(s, this.step + r.int(5, 30));
      }
    }
    if (r.chance(p.pPowerLoss)) {
      this.trace("POWER LOSS of every machine");
      const back = r.int(2, 15);
      for (const s of this.servers) if (s.status !== "down") this.#crash(s, true, back);
    }
    if (up.length > 0 && r.chance(p.pPause)) {
      this.stats.pauses++;
      victim().pause(r.chance(0.3) ? r.int(2000, 8000) : r.int(50, 1500));
    }
    if (up.length > 0 && r.chance(p.pStall)) {
      this.stats.stalls++;
      victim().stall(r.int(20, 1500));
    }
    if (r.chance(p.pPartition)) this.#partition();
    if (r.chance(p.pBadNetwork) && this.badNetworkUntil === 0) {
      this.badNetworkUntil = this.step + r.int(5, 40);
      this.#setNetwork(true);
      this.trace(`BAD NETWORK until s${this.badNetworkUntil}`);
    }
    if (up.length > 0 && r.chance(p.pDiskFault)) this.#diskFault(victim());
    if (up.length > 0 && r.chance(p.pSlowDisk)) {
      const s = victim();
      if (!this.slowUntil.has(s)) {
        this.stats.slowDisks++;
        this.slowUntil.set(s, this.step + r.int(5, 60));
        this.#diskTiming(s, true);
        this.trace(`${s.id} disk becomes SLOW until s${this.slowUntil.get(s)}`);
      }
    }
  }

  #diskFault(s: SimServer): void {
    const r = this.rng;
    const kind = r.pick(["eio-sync", "eio-write", "enospc"] as const);
    this.stats.diskFaults++;
    const f = s.fs.faults;
    if (kind === "eio-sync") f.syncError = r.pick([0.3, 1]);
    else if (kind === "eio-write") f.writeError = r.pick([0.3, 1]);
    else f.capacity = s.fs.used + r.int(0, 4096);
    this.trace(`${s.id} DISK FAULT ${kind}`);
    // A disk whose process survived the fault gets better by itself after a while.
    this.scheduler.world.schedule(r.int(10, 50) * STEP_MS, () => {
      if (s.status === "up") this.#healDisk(s);
    });
  }

  #partition(): void {
    const r = this.rng;
    const ids = this.servers.map((s) => s.id);
    const kind = r.int(0, 2);
    let apply: (net: SimNetwork) => void;
    let describe: string;
    if (kind === 0) {
      const leaders = this.#leaders();
      const lone = leaders.length > 0 && r.chance(0.7) ? r.pick(leaders).id : r.pick(ids);
      apply = (net) => net.memory.isolate(lone);
      describe = `isolate ${lone}`;
    } else if (kind === 1) {
      const side = ids.filter(() => r.chance(0.5));
      const other = ids.filter((id) => !side.includes(id));
      apply = (net) => net.memory.partition(side, other);
      describe = `${side.join(",")} | ${other.join(",")}`;
    } else {
      const links: Array<[string, string]> = [];
      for (let i = r.int(1, 4); i > 0; i--) {
        const a = r.pick(ids);
        const b = r.pick(ids);
        if (a !== b) links.push([a, b]);
      }
      apply = (net) => {
        for (const [a, b] of links) net.memory.partitionOneWay(a, b);
      };
      describe = `one-way ${links.map(([a, b]) => `${a}>${b}`).join(" ")}`;
    }
    const until = this.step + r.int(5, 60);
    this.stats.partitions++;
    this.partitions.push({ until, apply, describe });
    apply(this.network);
    this.trace(`PARTITION until s${until}: ${describe}`);
  }

  // ------------------------------------------------------------- healing

  #heal(): void {
    if (this.healStart < 0) this.#startHealing();
    const leader = this.#leader();
    const f = this.final;
    if (f.index === undefined) {
      if (!f.inFlight && leader !== undefined) {
        f.inFlight = true;
        f.tries++;
        const value = `final.${f.tries}`;
        this.trace(`final write ${value} through ${leader.id}`);
        void this.workload.finalWrite(leader, value).then((index) => {
          f.inFlight = false;
          if (index !== undefined) {
            f.index = index;
            this.trace(`final write acknowledged at ${index}`);
          }
        });
      }
    } else if (leader !== undefined) {
      const members = leader.raft!.getConfiguration().configuration.servers;
      const behind = members.filter((m) => {
        const s = this.servers.find((x) => x.id === m.id)!;
        return s.status !== "up" || s.raft!.appliedIndex < f.index!;
      });
      if (behind.length === 0) {
        this.#compareStateMachines(members.map((m) => m.id));
        this.done = true;
        this.trace(`DONE: every member applied the final write at ${f.index}`);
        return;
      }
    }
    if (!this.#measuringBacklog() && this.step - this.healStart > this.healBound) {
      const state = this.servers.map((s) =>
        s.status === "up"
          ? `${s.id}:${s.raft!.state}/t${s.raft!.currentTerm}/c${s.raft!.commitIndex}/a${
            s.raft!.appliedIndex
          }/l${s.raft!.lastIndex}/cfg${describeConfig(s)}`
          : `${s.id}:${s.status}`
      ).join(" ");
      this.checker.fail(
        `liveness: ${this.healBound} steps after healing, ${
          leader ? `leader ${leader.id}` : "no leader"
        } and the final write ${
          f.index !== undefined
            ? `(index ${f.index}) is not applied on every member`
            : "is not acknowledged"
        } [${state}]`,
      );
    }
  }

  #startHealing(): void {
    this.healStart = this.step;
    this.trace("HEAL: faults stop, every server restarts, partitions heal");
    this.workload.stop();
    this.partitions = [];
    this.#applyPartitions();
    this.badNetworkUntil = 0;
    const m = this.network.memory;
    m.drop(0);
    m.duplicate(0);
    m.reorder(0);
    m.delay(this.p.delayMin, Math.min(this.p.delayMax, HEALED_DELAY_MAX_MS));
    for (const s of this.servers) {
      this.#healDisk(s);
      if (this.slowUntil.has(s)) this.#diskTiming(s, false);
      s.loop?.resume();
      if (s.status !== "up") {
        this.#forget(s);
        s.crash(false);
        this.#start(s);
      }
    }
    this.slowUntil.clear();
    this.restartAt.clear();
    // A follower far behind catches up at a finite rate: allow some steps per missing entry.
    for (const s of this.servers) {
      const raft = s.raft;
      if (raft === undefined) continue;
      this.#noteBacklog(raft.lastIndex, raft.appliedIndex);
    }
    // Servers restarted just now are still opening their stores: count them
    // once they are up (from their commit index: they apply what they hold
    // quickly, what they lack comes at the catch-up rate).
    this.healPending = new Set(this.servers.filter((s) => s.status === "starting"));
  }

  #noteBacklog(last: number, applied: number): void {
    this.healLast = Math.max(this.healLast, last);
    this.healApplied = Math.min(this.healApplied, applied);
    this.healBound = this.healSteps +
      Math.ceil(
        Math.max(0, this.healLast - (this.healApplied === Infinity ? 0 : this.healApplied)) /
          this.#catchupPerStep(),
      );
  }

  /**
   * Entries per step a lagging member honestly gets: a leader sends at most
   * `maxInflightAppends` appends of at most `maxAppendEntries` entries per
   * round trip, and a round trip costs the network both ways plus a disk
   * round. A configuration that sends one entry at a time catches up at
   * about one entry per round, whatever the allowance assumed. Of `k`
   * appends in flight at most `k − 1` share the follower's fsync: the one
   * being written holds the disk while the next arrives (seed 93002554:
   * one entry and two appends in flight on a 45 ms disk caught up at 2.2
   * entries a step, where `k` per round allowed 3).
   */
  #catchupPerStep(): number {
    const raft = this.p.raft;
    const inflight = raft.maxInflightAppends ?? DEFAULT_CONFIG.maxInflightAppends;
    const perRound = (raft.maxAppendEntries ?? DEFAULT_CONFIG.maxAppendEntries) *
      Math.max(1, inflight - 1);
    const roundMs = 2 * Math.min(this.p.delayMax, HEALED_DELAY_MAX_MS) + APPEND_ROUND_DISK_MS;
    return Math.min(MAX_CATCHUP_PER_STEP, (perRound * STEP_MS) / roundMs);
  }

  /** Count the servers restarted at healing once they are up; true while some are still starting. */
  #measuringBacklog(): boolean {
    for (const s of this.healPending) {
      if (s.status === "starting") continue;
      this.healPending.delete(s);
      if (s.status === "up") this.#noteBacklog(s.raft!.lastIndex, s.raft!.commitIndex);
    }
    return this.healPending.size > 0 && this.step - this.healStart < MAX_START_STEPS;
  }

  #leader(): SimServer | undefined {
    let best: SimServer | undefined;
    for (const s of this.#leaders()) {
      if (!best || s.raft!.currentTerm > best.raft!.currentTerm) best = s;
    }
    return best;
  }

  /** Members that applied the same index hold the same state. */
  #compareStateMachines(ids: string[]): void {
    const byIndex = new Map<number, { id: string; digest: string }>();
    for (const id of ids) {
      const s = this.servers.find((x) => x.id === id)!;
      const index = s.raft!.appliedIndex;
      const digest = digestKv(s);
      const other = byIndex.get(index);
      if (other === undefined) byIndex.set(index, { id, digest });
      else if (other.digest !== digest) {
        this.checker.fail(
          `state machine safety: ${id} and ${other.id} applied up to ${index} but hold different state:\n  ${id}: ${digest}\n  ${other.id}: ${other.digest}`,
        );
        return;
      }
    }
  }
}

function digestKv(s: SimServer): string {
  const kv = s.kv!;
  const decoder = new TextDecoder();
  return kv.keys().map((k) => {
    const item = kv.get(k)!;
    return `${k}=${decoder.decode(item.value)}@${item.createIndex}/${item.modifyIndex}`;
  }).join(" ");
}

function describeConfig(s: SimServer): string {
  const latest = s.raft!.getConfiguration();
  const servers = latest.configuration.servers.map((x) =>
    `${x.id}${x.suffrage === "voter" ? "" : `(${x.suffrage})`}`
  );
  return `@${latest.index}[${servers.join(",")}]`;
}
