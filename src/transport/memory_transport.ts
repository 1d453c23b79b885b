/**
 * An in-memory network of transports for tests and simulations, with fault
 * injection: loss, delay, duplication, reordering, partitions. All
 * randomness comes from one injectable source, so a seed replays a run.
 *
 * @module
 */

import type { InstallSnapshotRequest, Message, ServerAddress } from "../core/types.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import { SnapshotRejectedError, TransportError } from "./errors.ts";
import type { Transport, TransportHandler } from "./types.ts";
import { describeValue } from "../describe_value.ts";

/**
 * A small, fast, seeded pseudo-random generator (mulberry32) returning
 * numbers in [0, 1), like `Math.random`.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./memory_transport.ts";
 * const a = seededRandom(42), b = seededRandom(42);
 * console.log(a() === b()); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Timer functions the network schedules deliveries with (a simulation may pass a virtual clock). */
export interface MemoryTimers {
  /**
   * Runs `callback` after `ms` milliseconds; returns a handle for
   * `clearTimeout`. `to` and `from` name the servers the callback delivers
   * to and from, when it delivers messages: a simulation that gives each
   * server its own event loop runs the delivery there (a paused server then
   * receives nothing until it resumes, and then in any order between
   * senders, as a real event loop reads its sockets).
   */
  setTimeout(
    callback: () => void,
    ms: number,
    to?: ServerAddress,
    from?: ServerAddress,
  ): unknown;
  /** Cancels a pending `setTimeout`. */
  clearTimeout(handle: unknown): void;
  /** Milliseconds on this clock. */
  now(): number;
}

/** Options of {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed of the built-in generator; ignored when `random` is given. Default 1. */
  seed?: number;
  /** Source of randomness in [0, 1) for every fault decision. */
  random?: () => number;
  /**
   * Pass each message through the wire codec (default true), so the receiver
   * gets its own copy, exactly what the TCP transport would deliver, and an
   * invalid message throws at `send` like a bug should.
   */
  copyMessages?: boolean;
  /** Timers to schedule delayed deliveries with. Default: the global ones. */
  timers?: MemoryTimers;
}

/** Counters of a {@linkcode MemoryNetwork}. */
export interface MemoryNetworkStats {
  /** Messages handed to `send`. */
  sent: number;
  /** Messages handed to a handler (duplicates included). */
  delivered: number;
  /** Messages lost: faults, partitions, unknown or stopped receivers. */
  dropped: number;
  /** Extra copies created by `duplicate`. */
  duplicated: number;
}

interface Pending {
  at: number;
  from: ServerAddress;
  message: Message;
}

/** A per (from, to) FIFO of delayed messages with one timer for its head. */
interface Lane {
  from: ServerAddress;
  to: ServerAddress;
  queue: Pending[];
  head: number;
  timer: unknown;
  lastAt: number;
}

const DELIVER = Symbol("deliver");
const SNAPSHOT = Symbol("snapshot");
const DETACH = Symbol("detach");

const defaultTimers: MemoryTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

function probability(p: number, name: string): number {
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`${name} must be a number in [0, 1], got ${describeValue(p)}`);
  }
  return p;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A registry of {@linkcode MemoryTransport}s that delivers between them and
 * injects faults. Without faults, delivery happens in a microtask and keeps
 * per-sender order; with `delay`, per-sender order still holds unless
 * `reorder` lets messages overtake.
 *
 * @example A partition between two servers
 * ```ts
 * import { MemoryNetwork } from "./memory_transport.ts";
 * const net = new MemoryNetwork({ seed: 7 });
 * const a = net.transport("a"), b = net.transport("b");
 * const got: string[] = [];
 * await b.start({ onMessage: (m) => got.push(m.type), onSnapshot: async () => {} });
 * net.partition(["a"], ["b"]);
 * a.send("b", { type: "timeout_now", term: 1, from: "a", to: "b" }); // dropped
 * net.heal();
 * a.send("b", { type: "timeout_now", term: 1, from: "a", to: "b" });
 * await new Promise((r) => setTimeout(r, 0));
 * console.log(got.length); // 1
 * await net.close();
 * ```
 */
export class MemoryNetwork {
  /** Counters since creation. */
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };

  #random: () => number;
  #copy: boolean;
  #timers: MemoryTimers;
  #transports = new Map<ServerAddress, MemoryTransport>();
  #lanes = new Map<string, Lane>();
  #loose = new Map<unknown, ServerAddress>(); // timers of reordered messages → receiver
  #blocked = new Set<string>();
  #isolated = new Set<ServerAddress>();
  #drop = 0;
  #duplicate = 0;
  #reorder = 0;
  #delayMin = 0;
  #delayMax = 0;

  /**
   * Creates an empty network; every fault starts switched off.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork({ seed: 42 }); // the same seed replays the same faults
   * console.log(net.stats.sent); // 0
   * ```
   */
  constructor(options: MemoryNetworkOptions = {}) {
    this.#random = options.random ?? seededRandom(options.seed ?? 1);
    this.#copy = options.copyMessages ?? true;
    this.#timers = options.timers ?? defaultTimers;
  }

  /**
   * Creates the transport of the server at `address` and attaches it.
   *
   * @throws {Error} when a transport with that address is attached already (close it first).
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const transport = net.transport("n1");
   * console.log(transport.localAddress); // "n1"
   * ```
   */
  transport(address: ServerAddress): MemoryTransport {
    if (this.#transports.has(address)) {
      throw new Error(`address ${address} is already in use on this network`);
    }
    const transport = new MemoryTransport(this, address);
    this.#transports.set(address, transport);
    return transport;
  }

  /**
   * Drops each message (and fails each snapshot) with probability `p`.
   *
   * @throws {RangeError} when `p` is not in [0, 1].
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.drop(0.2); // lose one message in five
   * net.drop(0); // lose none
   * ```
   */
  drop(p: number): void {
    this.#drop = probability(p, "drop probability");
  }

  /**
   * Delays each message by a uniformly random time in [minMs, maxMs]. `delay(0)` removes delay.
   *
   * @throws {RangeError} unless 0 <= minMs <= maxMs < Infinity.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.delay(1, 15); // a WAN-ish 1–15 ms per message
   * net.delay(0);
   * ```
   */
  delay(minMs: number, maxMs: number = minMs): void {
    if (!(minMs >= 0 && maxMs >= minMs && Number.isFinite(maxMs))) {
      throw new RangeError(
        `delay must satisfy 0 <= minMs <= maxMs, got ${describeValue(minMs)}, ${
          describeValue(maxMs)
        }`,
      );
    }
    this.#delayMin = minMs;
    this.#delayMax = maxMs;
  }

  /**
   * Delivers each message twice with probability `p`.
   *
   * @throws {RangeError} when `p` is not in [0, 1].
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.duplicate(0.1);
   * ```
   */
  duplicate(p: number): void {
    this.#duplicate = probability(p, "duplicate probability");
  }

  /**
   * Lets each message escape per-sender order with `p` (default 1): it gets
   * its own random delay (at least one timer turn) and may overtake or be
   * overtaken.
   *
   * @throws {RangeError} when `p` is not in [0, 1].
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.delay(0, 10);
   * net.reorder(0.5);
   * ```
   */
  reorder(p = 1): void {
    this.#reorder = probability(p, "reorder probability");
  }

  /**
   * Cuts every link between a server of `groupA` and one of `groupB`, both ways.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.partition(["n1"], ["n2", "n3"]); // n1 alone on one side
   * console.log(net.connected("n1", "n2"), net.connected("n2", "n3")); // false true
   * ```
   */
  partition(groupA: readonly ServerAddress[], groupB: readonly ServerAddress[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.#blocked.add(`${a}\u0000${b}`);
        this.#blocked.add(`${b}\u0000${a}`);
      }
    }
  }

  /**
   * Cuts the link from `from` to `to` only (replies still flow back).
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.partitionOneWay("n1", "n2");
   * console.log(net.connected("n1", "n2"), net.connected("n2", "n1")); // false true
   * ```
   */
  partitionOneWay(from: ServerAddress, to: ServerAddress): void {
    this.#blocked.add(`${from}\u0000${to}`);
  }

  /**
   * Cuts `address` off from every other server, both ways.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.isolate("n1");
   * console.log(net.connected("n1", "n2"), net.connected("n3", "n1")); // false false
   * ```
   */
  isolate(address: ServerAddress): void {
    this.#isolated.add(address);
  }

  /**
   * Removes every partition and isolation (other faults stay).
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.isolate("n1");
   * net.heal();
   * console.log(net.connected("n1", "n2")); // true
   * ```
   */
  heal(): void {
    this.#blocked.clear();
    this.#isolated.clear();
  }

  /**
   * Removes every fault: partitions, isolation, loss, delay, duplication, reordering.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * net.drop(0.5);
   * net.isolate("n1");
   * net.reset();
   * console.log(net.connected("n1", "n2")); // true
   * ```
   */
  reset(): void {
    this.heal();
    this.#drop =
      this.#duplicate =
      this.#reorder =
      this.#delayMin =
      this.#delayMax =
        0;
  }

  /**
   * Whether a message from `from` to `to` would pass the partitions right now (loss aside).
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * console.log(net.connected("n1", "n2")); // true
   * ```
   */
  connected(from: ServerAddress, to: ServerAddress): boolean {
    if (from === to) return true;
    return !this.#isolated.has(from) && !this.#isolated.has(to) &&
      !this.#blocked.has(`${from}\u0000${to}`);
  }

  /**
   * Closes every attached transport.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const a = net.transport("a"), b = net.transport("b");
   * const got: string[] = [];
   * await b.start({ onMessage: (m) => got.push(m.type), onSnapshot: async () => {} });
   * const ping = { type: "timeout_now", term: 1, from: "a", to: "b" } as const;
   * await net.close();
   * a.send("b", ping); // dropped: both are closed
   * console.log(got.length); // 0
   * ```
   */
  async close(): Promise<void> {
    await Promise.all([...this.#transports.values()].map((t) => t.close()));
  }

  /**
   * Routes one message (called by {@linkcode MemoryTransport.send}).
   *
   * @ignore
   */
  [DELIVER](from: ServerAddress, to: ServerAddress, message: Message): void {
    const stats = this.stats;
    stats.sent++;
    // Encode now: the sender may reuse its objects; a bad message throws here.
    const bytes = this.#copy ? encodeMessage(message) : null;
    if (!this.connected(from, to) || (this.#drop > 0 && this.#random() < this.#drop)) {
      stats.dropped++;
      return;
    }
    const copies = this.#duplicate > 0 && this.#random() < this.#duplicate ? 2 : 1;
    if (copies === 2) stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const m = bytes === null ? message : decodeMessage(bytes);
      this.#schedule(from, to, m);
    }
  }

  #schedule(from: ServerAddress, to: ServerAddress, message: Message): void {
    const random = this.#random;
    const loose = this.#reorder > 0 && random() < this.#reorder;
    const span = this.#delayMax - this.#delayMin;
    const delay = this.#delayMin + (span > 0 ? random() * span : 0);
    if (loose) {
      const handle = this.#timers.setTimeout(
        () => {
          this.#loose.delete(handle);
          this.#handTo(to, from, message);
        },
        delay,
        to,
        from,
      );
      this.#loose.set(handle, to);
      return;
    }
    const key = `${from}\u0000${to}`;
    let lane = this.#lanes.get(key);
    if (delay === 0 && (lane === undefined || lane.head === lane.queue.length)) {
      queueMicrotask(() => this.#handTo(to, from, message));
      return;
    }
    if (lane === undefined) {
      lane = { from, to, queue: [], head: 0, timer: undefined, lastAt: 0 };
      this.#lanes.set(key, lane);
    }
    const now = this.#timers.now();
    // Never before the message ahead of it: per-sender order holds under delay.
    const at = Math.max(now + delay, lane.lastAt);
    lane.lastAt = at;
    lane.queue.push({ at, from, message });
    if (lane.timer === undefined) this.#arm(lane, at - now);
  }

  #arm(lane: Lane, ms: number): void {
    lane.timer = this.#timers.setTimeout(
      () => {
        lane.timer = undefined;
        const now = this.#timers.now();
        while (lane.head < lane.queue.length && lane.queue[lane.head].at <= now + 0.5) {
          const { from, message } = lane.queue[lane.head++];
          this.#handTo(lane.to, from, message);
        }
        if (lane.head === lane.queue.length) {
          lane.queue = [];
          lane.head = 0;
        } else {
          this.#arm(lane, lane.queue[lane.head].at - now);
        }
      },
      Math.max(0, ms),
      lane.to,
      lane.from,
    );
  }

  #handTo(to: ServerAddress, from: ServerAddress, message: Message): void {
    const target = this.#transports.get(to);
    // Partitions also cut messages already in flight.
    if (target === undefined || !this.connected(from, to) || !target[DELIVER](message, from)) {
      this.stats.dropped++;
      return;
    }
    this.stats.delivered++;
  }

  /**
   * Carries one snapshot (called by {@linkcode MemoryTransport.sendSnapshot}).
   *
   * @ignore
   */
  async [SNAPSHOT](
    from: ServerAddress,
    to: ServerAddress,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const m = this.#copy
      ? decodeMessage(encodeMessage(message)) as InstallSnapshotRequest
      : message;
    if (!this.connected(from, to)) throw new TransportError(`${to} is unreachable from ${from}`);
    if (this.#drop > 0 && this.#random() < this.#drop) {
      throw new TransportError(`snapshot to ${to} lost (injected fault)`);
    }
    const span = this.#delayMax - this.#delayMin;
    const delay = this.#delayMin + (span > 0 ? this.#random() * span : 0);
    await new Promise<void>((resolve) => {
      if (delay === 0) queueMicrotask(resolve);
      else this.#timers.setTimeout(resolve, delay);
    });
    const target = this.#transports.get(to);
    const handler = target?.[SNAPSHOT]();
    if (target === undefined || handler === undefined || handler === null) {
      throw new TransportError(`no started transport at ${to}`);
    }
    let cut: TransportError | null = null;
    const check = () => {
      if (this.#transports.get(to) !== target || !this.connected(from, to)) {
        cut = new TransportError(`snapshot transfer from ${from} to ${to} was cut`);
        throw cut;
      }
    };
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of data) {
        check();
        // A copy, like bytes off a socket: the sender may reuse its buffer.
        yield chunk.slice();
      }
      check();
    };
    try {
      await handler.onSnapshot(m, chunks(), from);
    } catch (e) {
      if (cut !== null) throw cut;
      throw new SnapshotRejectedError(errorText(e));
    }
    if (cut !== null) throw cut;
  }

  /**
   * Detaches a closed transport and cancels deliveries to it.
   *
   * @ignore
   */
  [DETACH](transport: MemoryTransport): void {
    const address = transport.localAddress;
    if (this.#transports.get(address) !== transport) return;
    this.#transports.delete(address);
    for (const [key, lane] of this.#lanes) {
      if (lane.to !== address) continue;
      if (lane.timer !== undefined) this.#timers.clearTimeout(lane.timer);
      this.stats.dropped += lane.queue.length - lane.head;
      this.#lanes.delete(key);
    }
    for (const [handle, to] of this.#loose) {
      if (to !== address) continue;
      this.#timers.clearTimeout(handle);
      this.#loose.delete(handle);
      this.stats.dropped++;
    }
  }
}

/**
 * The {@linkcode Transport} of one server on a {@linkcode MemoryNetwork}.
 * Create it with {@linkcode MemoryNetwork.transport}. Closing it detaches it
 * from the network (its address may then be reused, e.g. for a restart).
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_transport.ts";
 * const net = new MemoryNetwork();
 * const a = net.transport("a"), b = net.transport("b");
 * await b.start({
 *   onMessage: () => {},
 *   onSnapshot: async (_m, data) => { for await (const chunk of data) console.log(chunk.length); },
 * });
 * async function* data() { yield new Uint8Array(10); yield new Uint8Array(20); }
 * await a.sendSnapshot("b", {
 *   type: "snapshot", term: 1, from: "a", to: "b",
 *   meta: { index: 5, term: 1, configuration: { servers: [] }, configurationIndex: 1 },
 * }, data());
 * await net.close();
 * ```
 */
export class MemoryTransport implements Transport {
  /** This server's address on the network. */
  readonly localAddress: ServerAddress;
  #network: MemoryNetwork;
  #handler: TransportHandler | null = null;
  #closed = false;

  /**
   * Use {@linkcode MemoryNetwork.transport} instead: it also attaches the transport.
   *
   * @example
   * ```ts
   * import { MemoryNetwork, MemoryTransport } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const detached = new MemoryTransport(net, "x"); // cannot receive: not attached
   * console.log(detached.localAddress); // "x"
   * ```
   */
  constructor(network: MemoryNetwork, address: ServerAddress) {
    this.#network = network;
    this.localAddress = address;
  }

  /**
   * Starts delivering to `handler`; messages arriving before are dropped.
   *
   * @throws {TransportError} when the transport is closed.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const a = net.transport("a"), b = net.transport("b");
   * const got: string[] = [];
   * await b.start({ onMessage: (m) => got.push(m.type), onSnapshot: async () => {} });
   * const ping = { type: "timeout_now", term: 1, from: "a", to: "b" } as const;
   * a.send("b", ping);
   * await new Promise((r) => setTimeout(r, 0));
   * console.log(got); // ["timeout_now"]
   * ```
   */
  start(handler: TransportHandler): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError("the transport is closed"));
    this.#handler = handler;
    return Promise.resolve();
  }

  /**
   * Sends `message` through the network (subject to its faults). Never throws for delivery failures.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const a = net.transport("a"), b = net.transport("b");
   * const got: string[] = [];
   * await b.start({ onMessage: (m) => got.push(m.type), onSnapshot: async () => {} });
   * const ping = { type: "timeout_now", term: 1, from: "a", to: "b" } as const;
   * net.drop(1);
   * a.send("b", ping);
   * console.log(net.stats.dropped); // 1
   * ```
   */
  send(address: ServerAddress, message: Message): void {
    if (this.#closed) return;
    this.#network[DELIVER](this.localAddress, address, message);
  }

  /**
   * Streams a snapshot through the network (subject to its partitions and loss).
   *
   * @throws {TransportError} when the receiver is unreachable, the transfer was dropped or this transport is closed.
   * @throws {SnapshotRejectedError} when the receiver's handler rejected the snapshot.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const a = net.transport("a");
   * net.transport("b"); // attached but never started
   * async function* data() { yield new Uint8Array(3); }
   * const meta = { index: 5, term: 1, configuration: { servers: [] }, configurationIndex: 1 };
   * await a.sendSnapshot("b", { type: "snapshot", term: 1, from: "a", to: "b", meta }, data())
   *   .catch((e: Error) => console.log(e.name)); // TransportError
   * ```
   */
  sendSnapshot(
    address: ServerAddress,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError("the transport is closed"));
    return this.#network[SNAPSHOT](this.localAddress, address, message, data);
  }

  /**
   * Detaches from the network; nothing is delivered to it afterwards, and its address may be attached again.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_transport.ts";
   * const net = new MemoryNetwork();
   * const t = net.transport("n1");
   * await t.close();
   * net.transport("n1"); // a restart on the same address
   * ```
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#handler = null;
      this.#network[DETACH](this);
    }
    return Promise.resolve();
  }

  /**
   * Hands `message` to the handler; false when not started or closed.
   *
   * @ignore
   */
  [DELIVER](message: Message, from: ServerAddress): boolean {
    const handler = this.#handler;
    if (handler === null) return false;
    try {
      handler.onMessage(message, from);
    } catch {
      // A handler must not throw; the network keeps going regardless.
    }
    return true;
  }

  /**
   * The handler for an incoming snapshot, or null when not started.
   *
   * @ignore
   */
  [SNAPSHOT](): TransportHandler | null {
    return this.#handler;
  }
}
