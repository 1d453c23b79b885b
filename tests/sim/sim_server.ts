/**
 * One simulated server: a disk that outlives its processes, and the current
 * process (incarnation) running on it — its event loop and clock, the real
 * file stores on the simulated disk, the real `Raft` over the simulated
 * network, and the daemon's KV state machine. Crashes, power losses, clean
 * restarts, pauses and stalls happen here; what the process does is reported
 * to the {@linkcode Checker}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Config } from "../../src/config.ts";
import type { Configuration, Entry } from "../../src/core/types.ts";
import type { FSM, FSMEntry } from "../../src/fsm.ts";
import { Raft } from "../../src/raft.ts";
import { KvFsm, type KvResult } from "../../src/server/kv_fsm.ts";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { FileSnapshotStore } from "../../src/storage/file_snapshot_store.ts";
import { FileStableStore } from "../../src/storage/file_stable_store.ts";
import type { Transport } from "../../src/transport/types.ts";
import type { Checker } from "./checker.ts";
import { ShadowLogStore, ShadowSnapshotStore } from "./log_shadow.ts";
import type { EventLoop, Scheduler } from "./scheduler.ts";
import { SimFileSystem } from "./sim_fs.ts";
import type { SimNetwork } from "./sim_network.ts";
import { VirtualClock } from "./virtual_clock.ts";

/** Where the process of a server is in its life. */
export type ServerStatus =
  /** No process. */
  | "down"
  /** The process opens its stores and starts Raft. */
  | "starting"
  /** Raft runs. */
  | "up"
  /** Raft stopped itself (a storage failure) or could not start; the process lingers. */
  | "failed"
  /** Raft shut down because it was removed from the cluster (`shutdownOnRemove`). */
  | "removed"
  /** A clean shutdown is under way. */
  | "stopping";

/** What a server needs from the simulation. */
export interface ServerContext {
  /** The one time line. */
  scheduler: Scheduler;
  /** The network. */
  network: SimNetwork;
  /** Invariants. */
  checker: Checker;
  /** A readable line for the trace. */
  trace(line: string): void;
}

/** The KV state machine, reporting each applied entry and each restore. */
class CheckedKvFsm implements FSM<KvResult> {
  constructor(
    readonly kv: KvFsm,
    readonly onApply: (entry: FSMEntry) => void,
    readonly onRestore: () => void,
  ) {}

  apply(entry: FSMEntry): KvResult {
    this.onApply(entry);
    return this.kv.apply(entry);
  }

  snapshot() {
    return this.kv.snapshot();
  }

  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    await this.kv.restore(data);
    this.onRestore();
  }
}

/** Directory of a server's data on its disk. */
const DATA = "/data";

/**
 * One server of the simulated cluster.
 *
 * @example
 * ```ts
 * import type { SimServer } from "./sim_server.ts";
 * function isServing(s: SimServer): boolean {
 *   return s.status === "up" && s.raft?.state === "leader";
 * }
 * ```
 */
export class SimServer {
  /** Server id (also its network address). */
  readonly id: string;
  /** The disk; it outlives processes. */
  readonly fs: SimFileSystem;
  /** Clock rate error of this machine. */
  readonly drift: number;
  /** Wall clock of this machine at true time 0. */
  readonly wallEpochMs: number;
  readonly #ctx: ServerContext;
  readonly #random: () => number;

  /** Current process's life stage. */
  status: ServerStatus = "down";
  /** Processes started so far. */
  incarnation = 0;
  /** The current process's loop (undefined when down). */
  loop: EventLoop | undefined;
  /** The current process's Raft, once started. */
  raft: Raft<KvResult> | undefined;
  /** The current process's state machine. */
  kv: KvFsm | undefined;
  /** What the current process's log holds. */
  shadow: ShadowLogStore | undefined;
  /** The current process's snapshot store. */
  snapshots: ShadowSnapshotStore | undefined;
  /** Why the process failed, when `status` is "failed". */
  failure: string | undefined;
  /** Whether a disk fault was active when the process failed. */
  failedUnderDiskFault = false;
  /** State machine restores from snapshots, over all processes. */
  fsmRestores = 0;

  #transport: Transport | undefined;
  /** Disk errors (EIO, ENOSPC) seen before this process started. */
  #diskErrorsAtStart = 0;
  #lastCommit = 0;
  #lastApplied = 0;
  #lastFsmIndex = 0;
  #leaderTerms = new Set<number>();

  /**
   * @param ctx The simulation.
   * @param id Server id and address.
   * @param random Randomness for this server (its disk's faults and crashes, its Raft's timeouts).
   * @param machine Clock rate error and wall clock of the machine.
   */
  constructor(
    ctx: ServerContext,
    id: string,
    random: () => number,
    machine: { drift: number; wallEpochMs: number },
  ) {
    this.#ctx = ctx;
    this.id = id;
    this.#random = random;
    this.fs = new SimFileSystem({ random });
    this.drift = machine.drift;
    this.wallEpochMs = machine.wallEpochMs;
  }

  /** Whether any disk fault is injected right now. */
  get diskFaulty(): boolean {
    const f = this.fs.faults;
    return f.syncError > 0 || f.writeError > 0 || f.capacity !== Infinity;
  }

  /**
   * Start a process: open the stores on the disk, start Raft (which
   * bootstraps `bootstrap` when the disk holds no state yet).
   */
  start(config: Omit<Config, "id" | "random">, bootstrap?: Configuration): void {
    if (this.status !== "down") throw new Error(`${this.id}: start while ${this.status}`);
    const ctx = this.#ctx;
    const inc = ++this.incarnation;
    const loop = ctx.scheduler.createLoop(`${this.id}#${inc}`);
    this.loop = loop;
    this.status = "starting";
    this.failure = undefined;
    this.#lastCommit = 0;
    this.#lastApplied = 0;
    this.#lastFsmIndex = 0;
    this.#diskErrorsAtStart = this.#diskErrors();
    const clock = new VirtualClock(loop, {
      drift: this.drift,
      bootMs: Math.floor(this.#random() * 100_000),
      wallEpochMs: this.wallEpochMs,
    });
    this.fs.attach(loop);
    const transport = ctx.network.transport(this.id, loop);
    this.#transport = transport;
    const kv = new KvFsm();
    this.kv = kv;
    const fs = this.fs;
    const checker = ctx.checker;
    loop.schedule(0, async () => {
      try {
        await fs.mkdirp(`${DATA}/snapshots`);
        const logStore = await FileLogStore.open(`${DATA}/log`, {
          fs,
          segmentBytes: 8 * 1024,
          cacheEntries: 64,
        });
        const stableStore = await FileStableStore.open(DATA, { fs });
        const snapshotStore = await FileSnapshotStore.open(`${DATA}/snapshots`, {
          fs,
          clock,
          retain: config.retainSnapshots ?? 2,
          chunkBytes: 1024,
        });
        const log = new ShadowLogStore(this.id, logStore, (prev, entries) => {
          checker.entriesAppended(this.id, prev, entries);
          this.#checkLeaderCompleteness(log, entries);
        });
        this.shadow = log;
        const fsm = new CheckedKvFsm(kv, (e) => this.#onApply(e), () => {
          this.#lastFsmIndex = 0;
          this.fsmRestores++;
        });
        const snapshots = new ShadowSnapshotStore(snapshotStore, log);
        this.snapshots = snapshots;
        const stores = {
          logStore: log,
          stableStore,
          snapshotStore: snapshots,
          transport,
          clock,
        };
        const raft = await Raft.create<KvResult>(
          {
            ...config,
            id: this.id,
            random: this.#random,
            // A trace names the server behind each warning.
            logger: getLogger(["raftd", "raft"]).with({ server: this.id }),
          },
          fsm,
          stores,
          { bootstrap },
        );
        if (!this.#current(loop)) return;
        this.raft = raft;
        this.status = "up";
        raft.observe((o) => {
          if (o.type === "state" && o.state !== "shutdown") {
            // As it happens: a leader may also stop within the same event
            // (a disk failure right after winning), unseen by poll(), yet
            // its heartbeats went out and other nodes act on them.
            if (o.state === "leader") checker.leaderElected(this.id, o.term, ctx.scheduler.now);
            ctx.trace(`${this.id} is ${o.state} in term ${o.term}`);
          }
        });
        ctx.trace(
          `${this.id}#${inc} up: term ${raft.currentTerm}, log ..${raft.lastIndex}, commit ${raft.commitIndex}, applied ${raft.appliedIndex}`,
        );
      } catch (e) {
        if (!this.#current(loop)) return;
        this.#failed(`could not start: ${describe(e)}`);
      }
    });
  }

  /**
   * The process dies (kill -9); with `powerLoss` the machine loses power
   * too, and the disk keeps only what was durable (and, at random, part of
   * what was not). After a failed fsync the machine is rebooted even
   * without a power loss: the page cache holds writes the disk never got
   * (see {@linkcode SimFileSystem.cacheDiverged}), which no process may see.
   */
  crash(powerLoss: boolean): void {
    if (this.status !== "down") {
      this.loop?.kill();
      void this.#transport?.close().catch(() => {});
      this.#gone();
    }
    const reboot = powerLoss || this.fs.cacheDiverged;
    if (reboot) this.fs.crash();
    this.#ctx.trace(`${this.id} ${powerLoss ? "POWER LOSS" : reboot ? "CRASH, reboot" : "CRASH"}`);
  }

  /** Shut Raft down cleanly, then the process exits. */
  shutdown(): void {
    const raft = this.raft;
    const loop = this.loop;
    if (this.status !== "up" || raft === undefined || loop === undefined) return;
    this.status = "stopping";
    this.#ctx.trace(`${this.id} SHUTDOWN`);
    loop.schedule(0, () => {
      raft.shutdown().then(
        () => {
          if (!this.#current(loop)) return;
          loop.kill();
          void this.#transport?.close().catch(() => {});
          this.#gone();
          this.#ctx.trace(`${this.id} stopped`);
        },
        (e) => this.#ctx.checker.fail(`${this.id}: shutdown() rejected: ${describe(e)}`),
      );
    });
  }

  /** SIGSTOP for `ms`: the clock runs on, the process handles nothing, then drains. */
  pause(ms: number): void {
    const loop = this.loop;
    if (loop === undefined || loop.paused) return;
    loop.pause();
    this.#ctx.trace(`${this.id} PAUSED for ${ms} ms`);
    this.#ctx.scheduler.world.schedule(ms, () => {
      if (loop.alive) {
        loop.resume();
        this.#ctx.trace(`${this.id} resumed`);
      }
    });
  }

  /** A synchronous task blocks the event loop for `ms`. */
  stall(ms: number): void {
    if (this.loop === undefined) return;
    this.loop.stall(ms);
    this.#ctx.trace(`${this.id} event loop STALLS for ${ms} ms`);
  }

  /**
   * After every event: the node's role, and its commit and applied indices
   * (which never go back). Notices a process whose Raft stopped itself.
   */
  poll(): void {
    const raft = this.raft;
    if (raft === undefined || this.status !== "up") return;
    const checker = this.#ctx.checker;
    const state = raft.state;
    if (state === "shutdown") {
      if (raft.removed) {
        this.status = "removed";
        this.#ctx.trace(`${this.id} shut down: removed from the cluster`);
      } else {
        const conf = raft.getConfiguration();
        this.#failed(
          `Raft stopped itself (configuration @${conf.index}: ${
            conf.configuration.servers.map((s) => `${s.id}/${s.suffrage}`).join(",")
          })`,
        );
      }
      return;
    }
    const term = raft.currentTerm;
    if (state === "leader") checker.leaderElected(this.id, term, this.#ctx.scheduler.now);
    const commit = raft.commitIndex;
    if (commit < this.#lastCommit) {
      checker.fail(`commit index of ${this.id} went back from ${this.#lastCommit} to ${commit}`);
      return;
    }
    this.#lastCommit = commit;
    const applied = raft.appliedIndex;
    if (applied < this.#lastApplied) {
      checker.fail(
        `applied index of ${this.id} went back from ${this.#lastApplied} to ${applied}`,
      );
      return;
    }
    this.#lastApplied = applied;
  }

  #onApply(e: FSMEntry): void {
    const checker = this.#ctx.checker;
    if (e.index <= this.#lastFsmIndex) {
      checker.fail(
        `applied index: ${this.id} applies index ${e.index} after ${this.#lastFsmIndex}`,
      );
    }
    this.#lastFsmIndex = e.index;
    checker.applied(this.id, e as Entry);
    // Applied means committed. (The commit index alone does not say which
    // entry: a follower may commit entries its log store has not been handed
    // yet, while it still holds older, conflicting ones there.)
    checker.committed(this.id, e.index, e.term, this.raft?.currentTerm ?? e.term);
  }

  /** The leader's first entry of its term follows everything it holds: check it holds what is committed. */
  #checkLeaderCompleteness(log: ShadowLogStore, entries: Entry[]): void {
    const raft = this.raft;
    if (raft === undefined || raft.state !== "leader") return;
    const term = raft.currentTerm;
    if (this.#leaderTerms.has(term)) return;
    for (const e of entries) {
      if (e.term !== term) continue;
      this.#leaderTerms.add(term);
      this.#ctx.checker.leaderCompleteness(log, term, e.index - 1);
      return;
    }
  }

  #current(loop: EventLoop): boolean {
    return this.loop === loop && loop.alive;
  }

  #diskErrors(): number {
    return this.fs.stats.ioErrors + this.fs.stats.noSpace;
  }

  #failed(why: string): void {
    this.status = "failed";
    this.failure = why;
    // The fault may be gone by now (healed while the error travelled up).
    this.failedUnderDiskFault = this.diskFaulty || this.#diskErrors() > this.#diskErrorsAtStart;
    this.#ctx.trace(`${this.id} FAILED: ${why}`);
  }

  #gone(): void {
    this.status = "down";
    this.loop = undefined;
    this.raft = undefined;
    this.kv = undefined;
    this.shadow = undefined;
    this.snapshots = undefined;
    this.#transport = undefined;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
