/**
 * The simulated clients: each one runs one operation at a time against the
 * server it believes leads (following `NotLeaderError` hints), with client
 * timeouts, Raft timeouts and aborts, and records every KV operation with
 * its invocation time, response time and outcome for the linearizability
 * check. They also exercise what is not KV: barriers, leader verification,
 * membership changes, leadership transfers, snapshots and restores.
 *
 * A request reaches the server as an event of its loop (a paused server
 * handles it when it resumes, a dead one never), and the answer travels back
 * to the client; a client that gives up first records the outcome as
 * unknown.
 *
 * @module
 */

import type { ServerId } from "../../src/core/types.ts";
import {
  AbortError,
  ConfigurationError,
  InvalidStateError,
  LeadershipLostError,
  LeadershipTransferError,
  NotLeaderError,
  RaftError,
  ShutdownError,
  StorageError,
  TimeoutError,
} from "../../src/errors.ts";
import type { Raft } from "../../src/raft.ts";
import { encodeDelete, encodePut } from "../../src/server/kv_command.ts";
import type { KvFsm, KvResult } from "../../src/server/kv_fsm.ts";
import { type KvItem, writeKvSnapshot } from "../../src/server/kv_snapshot.ts";
import type { Checker } from "./checker.ts";
import type { KvInput, KvOperation, KvOutput } from "./kv_model.ts";
import type { Prng } from "./prng.ts";
import type { ScheduledEvent, Scheduler } from "./scheduler.ts";
import type { SimServer } from "./sim_server.ts";

/** Relative weights of the kinds of operations the clients run (0: never). */
export interface OperationMix {
  /** Plain puts. */
  put: number;
  /** Compare-and-set puts and deletes. */
  cas: number;
  /** Plain deletes. */
  delete: number;
  /** `readIndex()` then a local read. */
  read: number;
  /** Lease `readIndex()` then a local read. */
  leaseRead: number;
  /** `barrier()` then a local read. */
  barrierRead: number;
  /** `verifyLeader()`. */
  verifyLeader: number;
  /** `snapshot()` on any server. */
  snapshot: number;
  /** `restore()` of a user snapshot. */
  restore: number;
  /** Add, remove, demote servers. */
  membership: number;
  /** `leadershipTransfer()`. */
  transfer: number;
}

/** Counters of a {@linkcode Workload}. */
export interface WorkloadStats {
  /** Operations started (on a running server). */
  started: number;
  /** Operations refused because the server was down. */
  refused: number;
  /** KV writes acknowledged. */
  writesOk: number;
  /** KV writes whose outcome is unknown (timeouts, crashes, errors saying so). */
  writesUnknown: number;
  /** KV writes that definitely did not happen. */
  writesFailed: number;
  /** Reads that returned a value (checked). */
  readsOk: number;
  /** Lease reads among them. */
  leaseReads: number;
  /** Reads that failed. */
  readsFailed: number;
  /** Restores that completed. */
  restores: number;
  /** Snapshots taken on request. */
  snapshots: number;
  /** Membership changes committed. */
  membershipChanges: number;
  /** Leadership transfers completed. */
  transfers: number;
  /** `verifyLeader()` calls that confirmed. */
  verified: number;
  /** Requests aborted by their signal. */
  aborts: number;
  /** Requests the client gave up waiting for. */
  clientTimeouts: number;
}

/** What the workload needs from the simulation. */
export interface WorkloadContext {
  /** The time line. */
  scheduler: Scheduler;
  /** Every server (initial members and spares), by index. */
  servers: readonly SimServer[];
  /** Where unexpected errors are reported. */
  checker: Checker;
  /** Trace lines. */
  trace(line: string): void;
}

interface Client {
  name: string;
  busy: boolean;
  leader: ServerId | undefined;
  seq: number;
  /** Modify indices this client saw, per key (newest last), for compare-and-set. */
  seen: Map<string, number[]>;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The server was down: the request never reached it. */
class ConnectionRefused extends Error {
  constructor(server: string) {
    super(`connection refused by ${server}`);
    this.name = "ConnectionRefused";
  }
}

/** Errors a client may legitimately get from a Raft call. */
const EXPECTED = [
  NotLeaderError,
  LeadershipLostError,
  LeadershipTransferError,
  TimeoutError,
  AbortError,
  ShutdownError,
  StorageError,
  ConfigurationError,
  InvalidStateError,
];

/** How long (virtual ms) an aborted call may take to end: a membership change's retry sleeps a tick. */
const ABORT_WITHIN_MS = 250;
/**
 * How late (virtual ms) a call may end after its timeout: deadlines are
 * checked on ticks (half a heartbeat, at most 100 ms here), and a node's
 * clock may run slow by up to 3% (`SimParams.drift`).
 */
const TIMEOUT_SLACK_MS = 110;
const MAX_DRIFT = 0.04;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A set of concurrent clients and the history they record.
 *
 * @example
 * ```ts
 * import type { Workload } from "./workload.ts";
 * function report(w: Workload): string {
 *   return `${w.history.length} KV operations, ${w.stats.writesOk} writes acknowledged`;
 * }
 * ```
 */
export class Workload {
  /** Every KV operation that may have taken effect, for the linearizability check. */
  readonly history: KvOperation[] = [];
  /** Counters. */
  readonly stats: WorkloadStats = {
    started: 0,
    refused: 0,
    writesOk: 0,
    writesUnknown: 0,
    writesFailed: 0,
    readsOk: 0,
    leaseReads: 0,
    readsFailed: 0,
    restores: 0,
    snapshots: 0,
    membershipChanges: 0,
    transfers: 0,
    verified: 0,
    aborts: 0,
    clientTimeouts: 0,
  };
  readonly #ctx: WorkloadContext;
  readonly #rng: Prng;
  readonly #mix: OperationMix;
  readonly #keys: string[];
  readonly #members: number;
  readonly #clients: Client[] = [];
  #stopped = false;
  #inFlight = 0;
  #restores = 0;
  #restoreRunning = false;
  readonly #staleReads: boolean;
  /** Writes and restores sent and not answered yet: unknown outcomes if the run ends first. */
  readonly #unanswered = new Set<KvOperation[]>();

  /**
   * @param ctx The simulation.
   * @param rng Randomness of the clients.
   * @param options How many clients and keys, the mix of operations, and how
   *   many of the servers are the initial members (the rest are spares that
   *   membership changes add).
   */
  constructor(
    ctx: WorkloadContext,
    rng: Prng,
    options: {
      clients: number;
      keys: number;
      mix: OperationMix;
      members: number;
      /** Planted bug: read the local state machine without a read index. */
      staleReads?: boolean;
    },
  ) {
    this.#staleReads = options.staleReads ?? false;
    this.#ctx = ctx;
    this.#rng = rng;
    this.#mix = options.mix;
    this.#members = options.members;
    this.#keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
    for (let i = 0; i < options.clients; i++) {
      this.#clients.push({
        name: `c${i + 1}`,
        busy: false,
        leader: undefined,
        seq: 0,
        seen: new Map(),
      });
    }
  }

  /** Requests sent and not yet answered or given up on. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** No new operations from now on (those in flight finish). */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * The run is over: writes and restores still unanswered go into the
   * history with an unknown outcome (they may have happened, or not).
   */
  finish(): void {
    this.#stopped = true;
    for (const ops of this.#unanswered) this.history.push(...ops);
    this.#unanswered.clear();
  }

  /** Start the clients: each runs its first operation after a short think time. */
  start(): void {
    for (const c of this.#clients) this.#after(c, this.#rng.int(0, 200));
  }

  /** Run the client's next operation `ms` from now (unless stopped by then). */
  #after(c: Client, ms: number): void {
    this.#ctx.scheduler.world.schedule(ms, () => {
      if (!this.#stopped && !c.busy) this.#next(c);
    });
  }

  /**
   * A put by the simulation itself (the final write after healing): resolves
   * with its index once acknowledged, or undefined when it failed.
   */
  finalWrite(server: SimServer, value: string): Promise<number | undefined> {
    const client: Client = {
      name: "final",
      busy: false,
      leader: server.id,
      seq: 0,
      seen: new Map(),
    };
    return new Promise((resolve) => {
      this.#write(
        client,
        server,
        { op: "put", key: "final", value },
        3000,
        (index) => resolve(index),
      );
    });
  }

  // ------------------------------------------------------------ choosing

  #next(c: Client): void {
    const r = this.#rng;
    const m = this.#mix;
    const weights: Array<[keyof OperationMix, number]> = Object.entries(m) as Array<
      [keyof OperationMix, number]
    >;
    let total = 0;
    for (const [, w] of weights) total += w;
    let pick = r.float() * total;
    let kind: keyof OperationMix = "put";
    for (const [k, w] of weights) {
      pick -= w;
      if (pick < 0) {
        kind = k;
        break;
      }
    }
    const server = this.#target(c);
    if (server === undefined) {
      this.#after(c, r.int(50, 200));
      return;
    }
    const key = r.pick(this.#keys);
    const done = () => {
      c.busy = false;
      this.#after(c, r.int(0, 150));
    };
    c.busy = true;
    const clientTimeout = r.int(500, 5000);
    switch (kind) {
      case "put":
        this.#write(
          c,
          server,
          { op: "put", key, value: `${c.name}.${++c.seq}` },
          clientTimeout,
          done,
        );
        return;
      case "cas": {
        const cas = this.#guessIndex(c, key);
        const input: KvInput = r.chance(0.8)
          ? { op: "put", key, value: `${c.name}.${++c.seq}`, cas }
          : { op: "delete", key, cas };
        this.#write(c, server, input, clientTimeout, done);
        return;
      }
      case "delete":
        this.#write(c, server, { op: "delete", key }, clientTimeout, done);
        return;
      case "read":
      case "leaseRead":
      case "barrierRead":
        this.#read(c, server, key, kind, clientTimeout, done);
        return;
      case "verifyLeader":
        this.#call(
          c,
          server,
          "verifyLeader",
          clientTimeout,
          (raft, opts) => {
            const asked = this.#asked(raft);
            return this.#watch(raft.verifyLeader(opts), () => {
              this.#confirmed(server, asked, "verifyLeader");
            });
          },
          (o) => {
            if (o.ok) this.stats.verified++;
            done();
          },
        );
        return;
      case "snapshot": {
        const any = this.#running();
        const s = any.length > 0 ? r.pick(any) : server;
        this.#call(
          c,
          s,
          "snapshot",
          clientTimeout,
          (raft) =>
            this.#watch(raft.snapshot(), (info) => {
              const stored = s.snapshots?.newest ?? 0;
              if (stored < info.index || info.index > raft.appliedIndex) {
                this.#ctx.checker.fail(
                  `snapshot: ${s.id}'s snapshot() resolved with ${info.id} (index ${info.index}, applied ${raft.appliedIndex}), but the newest snapshot it stored is at ${stored}`,
                );
              }
            }),
          (o) => {
            if (o.ok) this.stats.snapshots++;
            done();
          },
          false,
        );
        return;
      }
      case "restore":
        if (this.#restoreRunning) return done();
        this.#restore(c, server, clientTimeout, done);
        return;
      case "membership":
        this.#membership(c, server, clientTimeout, done);
        return;
      case "transfer":
        this.#transfer(c, server, clientTimeout, done);
        return;
    }
  }

  #running(): SimServer[] {
    return this.#ctx.servers.filter((s) => s.status === "up");
  }

  /** The server the client believes leads, or any running one. */
  #target(c: Client): SimServer | undefined {
    const servers = this.#ctx.servers;
    const guess = servers.find((s) => s.id === c.leader);
    if (guess !== undefined && guess.status !== "down" && this.#rng.chance(0.9)) return guess;
    const candidates = servers.filter((s) => s.status !== "down");
    return candidates.length > 0 ? this.#rng.pick(candidates) : undefined;
  }

  /**
   * An index to compare-and-set against, as a client knows it: 0 (create
   * if absent), the newest modify index it saw for the key, or an older one
   * (a stale read-modify-write). Never an index it did not see, so every
   * compare-and-set in the history names a value the history shows.
   */
  #guessIndex(c: Client, key: string): number {
    const r = this.#rng;
    const seen = c.seen.get(key) ?? [];
    if (seen.length === 0 || r.chance(0.15)) return 0;
    return r.chance(0.8) ? seen[seen.length - 1] : r.pick(seen);
  }

  /** Client `c` saw modify index `index` for `key`. */
  #saw(c: Client, key: string, index: number): void {
    if (index === 0) return;
    let seen = c.seen.get(key);
    if (seen === undefined) c.seen.set(key, seen = []);
    if (seen[seen.length - 1] !== index) seen.push(index);
    if (seen.length > 8) seen.shift();
  }

  // ------------------------------------------------------------ calling

  /**
   * Send `run` to `server` as a request: it runs on the server's loop; its
   * outcome comes back to the client, unless the client gives up first.
   */
  #call<T>(
    c: Client,
    server: SimServer,
    what: string,
    clientTimeout: number,
    run: (
      raft: Raft<KvResult>,
      options: { timeout?: number; signal?: AbortSignal },
      kv: KvFsm,
    ) => Promise<T>,
    finish: (outcome: Outcome<T>, answered: boolean) => void,
    options = true,
  ): void {
    const ctx = this.#ctx;
    const r = this.#rng;
    const world = ctx.scheduler.world;
    const loop = server.loop;
    if (server.status !== "up" || loop === undefined || server.raft === undefined) {
      this.stats.refused++;
      finish({ ok: false, error: new ConnectionRefused(server.id) }, true);
      return;
    }
    this.stats.started++;
    this.#inFlight++;
    const raft = server.raft;
    const kv = server.kv!;
    let settled = false;
    const settle = (outcome: Outcome<T>, answered: boolean) => {
      if (settled) return;
      settled = true;
      world.cancel(giveUp); // set below, before anything can settle
      this.#inFlight--;
      if (!outcome.ok) this.#learn(c, outcome.error, server);
      finish(outcome, answered);
    };
    const opts: { timeout?: number; signal?: AbortSignal } = {};
    let abortAt = -1;
    /** When the signal aborted, and how many pauses the loop had had by then. */
    let aborted: { at: number; pauses: number } | undefined;
    let answered = false;
    if (options) {
      if (r.chance(0.5)) opts.timeout = r.int(100, 4000);
      if (r.chance(0.08)) {
        const controller = new AbortController();
        opts.signal = controller.signal;
        abortAt = r.int(0, 1500);
        loop.schedule(abortAt, () => {
          this.stats.aborts++;
          if (!answered) aborted = { at: ctx.scheduler.now, pauses: loop.pauses };
          controller.abort();
        });
      }
    }
    /** When the request reached the server, and how many pauses its loop had had by then. */
    let reached = { at: Infinity, pauses: 0 };
    /**
     * A call ends by its timeout, and an aborted one at once (a membership
     * change may first finish a retry's sleep), unless its process was
     * paused or stalled meanwhile.
     */
    const checkEnd = () => {
      answered = true;
      const now = ctx.scheduler.now;
      if (opts.timeout !== undefined && loop.pauses === reached.pauses) {
        const late = now - reached.at - opts.timeout;
        if (late > opts.timeout * MAX_DRIFT + TIMEOUT_SLACK_MS) {
          ctx.checker.fail(
            `${server.id}: ${what} with a timeout of ${opts.timeout} ms ended ${
              late.toFixed(1)
            } ms after it`,
          );
        }
      }
      if (aborted === undefined || loop.pauses !== aborted.pauses) return;
      const late = now - aborted.at;
      if (late > ABORT_WITHIN_MS) {
        ctx.checker.fail(
          `${server.id}: ${what} ended ${late.toFixed(1)} ms after its signal aborted, not at once`,
        );
      }
    };
    const latency = r.int(0, 3);
    const back = r.int(0, 3);
    loop.schedule(latency, () => {
      reached = { at: ctx.scheduler.now, pauses: loop.pauses };
      let promise: Promise<T>;
      try {
        promise = run(raft, opts, kv);
      } catch (e) {
        promise = Promise.reject(e);
      }
      promise.then(
        (value) => {
          checkEnd();
          world.schedule(back, () => settle({ ok: true, value }, true));
        },
        (error) => {
          checkEnd();
          this.#checkError(what, server, error);
          world.schedule(back, () => settle({ ok: false, error }, true));
        },
      );
    }, `client ${c.name}`);
    const giveUp: ScheduledEvent = world.schedule(clientTimeout, () => {
      if (settled) return;
      this.stats.clientTimeouts++;
      settle({ ok: false, error: new Error(`client gave up after ${clientTimeout} ms`) }, false);
    });
  }

  /**
   * Check what `promise` resolves with, on a side branch: the caller awaits
   * `promise` itself, so no step is added to the chain and a recorded seed
   * keeps its interleaving of events.
   */
  #watch<T>(promise: Promise<T>, check: (value: T) => void): Promise<T> {
    promise.then(check, () => {});
    return promise;
  }

  /** Where a leader-only call starts: this node's term, and the time. */
  #asked(raft: Raft<KvResult>): { term: number; at: number } {
    return { term: raft.currentTerm, at: this.#ctx.scheduler.now };
  }

  /** A call asked at `asked` confirmed `server`'s leadership: no newer leader may predate it. */
  #confirmed(server: SimServer, asked: { term: number; at: number }, what: string): void {
    this.#ctx.checker.leadershipConfirmed(server.id, asked.term, asked.at, what);
  }

  /** An error no client should ever see is a bug. */
  #checkError(what: string, server: SimServer, error: unknown): void {
    if (EXPECTED.some((cls) => error instanceof cls)) return;
    if (error instanceof RaftError) return;
    this.#ctx.checker.fail(
      `${server.id}: ${what} failed with an unexpected error: ${
        error instanceof Error ? error.stack ?? error.message : String(error)
      }`,
    );
  }

  /** Follow a leader hint; forget a leader that failed us. */
  #learn(c: Client, error: unknown, server: SimServer): void {
    if (error instanceof NotLeaderError) c.leader = error.leader?.id;
    else if (c.leader === server.id) c.leader = undefined;
  }

  #write(
    c: Client,
    server: SimServer,
    input: KvInput & { op: "put" | "delete" },
    clientTimeout: number,
    done: (index: number | undefined) => void,
  ): void {
    const call = this.#ctx.scheduler.now;
    const data = input.op === "put"
      ? encodePut(input.key, encoder.encode(input.value), input.cas)
      : encodeDelete(input.key, input.cas);
    const label = `${c.name} via ${server.id}`;
    const unknown = [{ call, ret: Infinity, input, client: label }];
    this.#unanswered.add(unknown);
    this.#call(
      c,
      server,
      "apply",
      clientTimeout,
      (raft, opts) => raft.apply(data, opts),
      (o, answered) => {
        this.#unanswered.delete(unknown);
        const now = this.#ctx.scheduler.now;
        if (o.ok) {
          c.leader = server.id;
          const response = o.value.response;
          const output: KvOutput = response.ok
            ? { kind: "written", index: o.value.index }
            : { kind: "conflict", current: response.current };
          this.history.push({ call, ret: now, input, output, client: label });
          this.stats.writesOk++;
          done(response.ok ? o.value.index : undefined);
          return;
        }
        const outcome = answered ? outcomeOf(o.error) : "unknown";
        this.#ctx.trace(
          `${label}: ${input.op} ${
            input.op === "put" ? input.value : input.key
          } failed (${outcome}): ${describe(o.error)}`,
        );
        if (outcome === "not_committed") {
          // Dropped from the history: were it applied after all, a read of its
          // value would be a value nobody wrote.
          this.stats.writesFailed++;
        } else {
          this.history.push({
            call,
            ret: outcome === "committed" ? now : Infinity,
            input,
            client: label,
          });
          this.stats.writesUnknown++;
        }
        done(undefined);
      },
    );
  }

  #read(
    c: Client,
    server: SimServer,
    key: string,
    how: "read" | "leaseRead" | "barrierRead",
    clientTimeout: number,
    done: () => void,
  ): void {
    const call = this.#ctx.scheduler.now;
    const point = (raft: Raft<KvResult>, opts: { timeout?: number; signal?: AbortSignal }) =>
      how === "barrierRead"
        ? raft.barrier(opts)
        : raft.readIndex({ ...opts, lease: how === "leaseRead" });
    this.#call(
      c,
      server,
      how,
      clientTimeout,
      async (raft, opts, kv) => {
        const asked = this.#asked(raft);
        if (!this.#staleReads) {
          await this.#watch<unknown>(point(raft, opts), () => {
            // A barrier is a write: a later leader may commit it for a deposed one.
            if (how !== "barrierRead") this.#confirmed(server, asked, how);
          });
        }
        return kv.get(key);
      },
      (o) => {
        if (o.ok) {
          const item: KvItem | undefined = o.value;
          this.history.push({
            call,
            ret: this.#ctx.scheduler.now,
            input: { op: "get", key },
            output: {
              kind: "read",
              value: item === undefined ? undefined : decoder.decode(item.value),
              index: item?.modifyIndex ?? 0,
            },
            client: `${c.name} via ${server.id} (${how})`,
          });
          this.stats.readsOk++;
          if (how === "leaseRead") this.stats.leaseReads++;
          if (item !== undefined) this.#saw(c, key, item.modifyIndex);
        } else {
          this.stats.readsFailed++;
        }
        done();
      },
    );
  }

  #restore(c: Client, server: SimServer, clientTimeout: number, done: () => void): void {
    const r = this.#rng;
    const n = ++this.#restores;
    const items = new Map<string, KvItem>();
    for (const key of this.#keys) {
      if (!r.chance(0.6)) continue;
      const index = 1e12 + n * 1000 + items.size;
      items.set(key, {
        value: encoder.encode(`r${n}.${key}`),
        createIndex: index,
        modifyIndex: index,
      });
    }
    const call = this.#ctx.scheduler.now;
    this.#restoreRunning = true;
    const unknown: KvOperation[] = this.#keys.map((key) => {
      const item = items.get(key);
      return {
        call,
        ret: Infinity,
        input: {
          op: "restore",
          key,
          value: item === undefined ? undefined : `r${n}.${key}`,
          index: item?.modifyIndex ?? 0,
        },
        client: `${c.name} via ${server.id}`,
      };
    });
    this.#unanswered.add(unknown);
    this.#call(
      c,
      server,
      "restore",
      clientTimeout + 5000,
      async (raft, opts) => {
        const chunks: Uint8Array[] = [];
        await writeKvSnapshot(items, [], {
          write: (chunk) => Promise.resolve(void chunks.push(chunk.slice())),
        }, 256);
        await raft.restore(
          (async function* () {
            yield* chunks;
          })(),
          opts,
        );
      },
      (o, answered) => {
        this.#unanswered.delete(unknown);
        this.#restoreRunning = false;
        if (o.ok) this.stats.restores++;
        const now = this.#ctx.scheduler.now;
        const outcome = o.ok ? "committed" : answered ? outcomeOf(o.error) : "unknown";
        // Not committed: left out, so a read of a restored value would show it happened.
        if (outcome !== "not_committed") {
          for (const op of unknown) {
            this.history.push(outcome === "committed" ? { ...op, ret: now } : op);
          }
        }
        done();
      },
    );
  }

  #membership(c: Client, server: SimServer, clientTimeout: number, done: () => void): void {
    const raft = server.raft;
    if (raft === undefined) return done();
    const r = this.#rng;
    const latest = raft.getConfiguration();
    const servers = latest.configuration.servers;
    const inConfig = new Set(servers.map((s) => s.id));
    const outside = this.#ctx.servers.filter((s) => !inConfig.has(s.id)).map((s) => s.id);
    const voters = servers.filter((s) => s.suffrage === "voter");
    const others = servers.filter((s) => s.suffrage !== "voter");
    type Change = (
      raft: Raft<KvResult>,
      o: { timeout?: number; prevIndex?: number },
    ) => Promise<{ index: number }>;
    const options: Array<[string, Change]> = [];
    for (const id of outside) {
      options.push([`addVoter ${id}`, (raft, o) => raft.addVoter(id, id, o)]);
      options.push([`addNonvoter ${id}`, (raft, o) => raft.addNonvoter(id, id, o)]);
    }
    for (const s of others) {
      options.push([`addVoter ${s.id}`, (raft, o) => raft.addVoter(s.id, s.id, o)]);
      options.push([`removeServer ${s.id}`, (raft, o) => raft.removeServer(s.id, o)]);
    }
    // Keep three voters most of the time so the cluster stays available.
    if (voters.length > 3 || (voters.length > 1 && r.chance(0.2))) {
      for (const s of voters) {
        options.push([`demoteVoter ${s.id}`, (raft, o) => raft.demoteVoter(s.id, o)]);
        options.push([`removeServer ${s.id}`, (raft, o) => raft.removeServer(s.id, o)]);
      }
    }
    if (options.length === 0 || this.#members === 0) return done();
    const [what, change] = r.pick(options);
    const prevIndex = r.chance(0.1) ? latest.index + r.int(-1, 1) : undefined;
    this.#ctx.trace(`${c.name} asks ${server.id} to ${what}`);
    this.#call(
      c,
      server,
      what,
      clientTimeout,
      (raft, opts) =>
        this.#watch(
          change(raft, {
            ...opts,
            ...(prevIndex !== undefined ? { prevIndex: Math.max(0, prevIndex) } : {}),
          }),
          (r) => this.#ctx.checker.configurationCommitted(server.id, r.index),
        ),
      (o) => {
        if (o.ok) this.stats.membershipChanges++;
        this.#ctx.trace(
          `${c.name}: ${what} ${o.ok ? "committed" : `failed: ${describe(o.error)}`}`,
        );
        done();
      },
    );
  }

  #transfer(c: Client, server: SimServer, clientTimeout: number, done: () => void): void {
    const raft = server.raft;
    if (raft === undefined) return done();
    const voters = raft.getConfiguration().configuration.servers.filter((s) =>
      s.suffrage === "voter" && s.id !== server.id
    );
    const target = voters.length > 0 && this.#rng.chance(0.7)
      ? this.#rng.pick(voters).id
      : undefined;
    this.#call(
      c,
      server,
      "leadershipTransfer",
      clientTimeout,
      (raft, opts) => {
        const { term } = this.#asked(raft);
        return this.#watch(raft.leadershipTransfer(target, opts), () => {
          this.#ctx.checker.transferred(server.id, term);
        });
      },
      (o) => {
        if (o.ok) this.stats.transfers++;
        done();
      },
    );
  }
}

/** What an error says about whether the write happened. */
function outcomeOf(error: unknown): "committed" | "not_committed" | "unknown" {
  if (
    error instanceof NotLeaderError || error instanceof LeadershipTransferError ||
    error instanceof ConnectionRefused
  ) {
    return "not_committed"; // refused before it was proposed
  }
  if (error instanceof InvalidStateError || error instanceof ConfigurationError) {
    return "not_committed";
  }
  if (
    error instanceof TimeoutError || error instanceof AbortError ||
    error instanceof LeadershipLostError
  ) {
    return error.outcome;
  }
  return "unknown";
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
