/**
 * The simulated network of the whole-node simulation: the project's
 * {@linkcode MemoryNetwork} (every message through the real wire codec;
 * loss, duplication, reordering, delay, symmetric and one-way partitions;
 * snapshots streamed chunk by chunk) on the simulation's virtual time, with
 * each delivery handed to the receiving process as an I/O event of its own
 * {@linkcode EventLoop}: a paused process receives nothing until it resumes,
 * a dead one never does.
 *
 * @module
 */

import type { InstallSnapshotRequest, Message, ServerAddress } from "../../src/core/types.ts";
import { TransportError } from "../../src/transport/errors.ts";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory_transport.ts";
import type { Transport, TransportHandler } from "../../src/transport/types.ts";
import type { EventLoop, ScheduledEvent, Scheduler } from "./scheduler.ts";

/** Options of {@linkcode SimNetwork}. */
export interface SimNetworkOptions {
  /** Randomness in [0, 1) for every fault decision. */
  random: () => number;
  /** Virtual ms a snapshot chunk of `bytes` takes to arrive (bandwidth, jitter). Default 1. */
  chunkDelay?: (bytes: number) => number;
  /**
   * A snapshot stream with no chunk for this long fails on both sides, as
   * the TCP transport's watchdog does (a paused or stalled receiver). Default 10 000.
   */
  snapshotStallMs?: number;
}

/** Counters of the snapshot streams of a {@linkcode SimNetwork}. */
export interface SimNetworkStats {
  /** Snapshot streams started. */
  snapshotsSent: number;
  /** Snapshot streams the receiver accepted. */
  snapshotsDelivered: number;
  /** Snapshot chunks handed to receivers. */
  snapshotChunks: number;
}

/**
 * A network on virtual time whose deliveries run on each receiver's loop.
 *
 * @example A message to a paused process waits for it
 * ```ts
 * import { Scheduler } from "./scheduler.ts";
 * import { SimNetwork } from "./sim_network.ts";
 * const s = new Scheduler();
 * const net = new SimNetwork(s, { random: () => 0.5 });
 * net.memory.delay(10);
 * const loopA = s.createLoop("a"), loopB = s.createLoop("b");
 * const a = net.transport("a", loopA), b = net.transport("b", loopB);
 * const got: number[] = [];
 * await b.start({ onMessage: () => got.push(s.now), onSnapshot: async () => {} });
 * loopB.pause();
 * a.send("b", { type: "timeout_now", term: 1, from: "a", to: "b" });
 * s.world.schedule(50, () => loopB.resume());
 * await s.runUntil(100);
 * console.log(got); // [ 50 ]
 * ```
 */
export class SimNetwork {
  /** The underlying network: set its faults (drop, delay, duplicate, reorder, partition) here. */
  readonly memory: MemoryNetwork;
  /** Counters of snapshot streams (message counters are in `memory.stats`). */
  readonly stats: SimNetworkStats = { snapshotsSent: 0, snapshotsDelivered: 0, snapshotChunks: 0 };
  readonly #world: EventLoop;
  readonly #scheduler: Scheduler;
  /** The loop of the process at each address, for deliveries. */
  readonly #loops = new Map<ServerAddress, EventLoop>();
  readonly #chunkDelay: (bytes: number) => number;
  readonly #stallMs: number;

  /** A network whose delays run on `scheduler`'s world loop. */
  constructor(scheduler: Scheduler, options: SimNetworkOptions) {
    const world = scheduler.world;
    this.#world = world;
    this.#scheduler = scheduler;
    this.#chunkDelay = options.chunkDelay ?? (() => 1);
    this.#stallMs = options.snapshotStallMs ?? 10_000;
    this.memory = new MemoryNetwork({
      random: options.random,
      timers: {
        // A delivery runs on the receiver's loop: one event per message.
        setTimeout: (callback, ms, to, from) => {
          const loop = to === undefined ? undefined : this.#loops.get(to);
          return (loop?.alive ? loop : world).schedule(ms, callback, `peer ${from}`);
        },
        clearTimeout: (handle) => world.cancel(handle as ScheduledEvent),
        now: () => scheduler.now,
      },
    });
  }

  /**
   * The transport of the process at `address` running on `loop`. A restarted
   * process closes its old transport and gets a new one on its new loop.
   */
  transport(address: ServerAddress, loop: EventLoop): Transport {
    const transport = new SimTransport(this, this.memory.transport(address), loop);
    this.#loops.set(address, loop);
    return transport;
  }

  /** @internal The process at `address` (on `loop`) is gone: deliveries to it run on the world's loop. */
  detach(address: ServerAddress, loop: EventLoop): void {
    if (this.#loops.get(address) === loop) this.#loops.delete(address);
  }

  /** @internal Hand `deliver` to `loop`: now if it runs there already, else as its next event. */
  deliverOn(loop: EventLoop, deliver: () => void): void {
    if (this.#scheduler.running === loop) deliver();
    else loop.schedule(0, deliver);
  }

  /**
   * @internal Carry one snapshot stream to `handler` on the receiver's
   * `loop`: each chunk arrives as an event of that loop; the stream breaks
   * (both sides see an error) when it makes no progress for the stall
   * timeout or when the receiver dies (`streams` is how its transport finds
   * the streams to break).
   */
  carry(
    handler: TransportHandler,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
    from: ServerAddress,
    loop: EventLoop,
    streams: Set<(error: Error) => void>,
  ): Promise<void> {
    this.stats.snapshotsSent++;
    const world = this.#world;
    const stallMs = this.#stallMs;
    const stats = this.stats;
    const chunkDelay = this.#chunkDelay;
    return new Promise<void>((resolve, reject) => {
      let broken: Error | undefined;
      let watchdog: ScheduledEvent | undefined;
      const end = () => {
        streams.delete(breakStream);
        if (watchdog) world.cancel(watchdog);
      };
      const breakStream = (error: Error) => {
        if (broken) return;
        broken = error;
        end();
        reject(error);
      };
      const arm = () => {
        if (watchdog) world.cancel(watchdog);
        watchdog = world.schedule(stallMs, () =>
          breakStream(
            new TransportError(
              `snapshot transfer from ${from} to ${message.to} stalled: no progress for ${stallMs} ms`,
            ),
          ));
      };
      streams.add(breakStream);
      arm();
      const paced = async function* (): AsyncGenerator<Uint8Array> {
        for await (const chunk of data) {
          if (broken) throw broken;
          await new Promise<void>((r) => loop.schedule(chunkDelay(chunk.length), r));
          if (broken) throw broken;
          arm();
          stats.snapshotChunks++;
          yield chunk;
        }
      };
      loop.schedule(0, () => {
        handler.onSnapshot(message, paced(), from).then(
          () => {
            if (broken) return;
            end();
            stats.snapshotsDelivered++;
            resolve();
          },
          (error) => {
            if (broken) return;
            end();
            reject(error);
          },
        );
      });
    });
  }

  /** @internal The world's loop (never paused). */
  get world(): EventLoop {
    return this.#world;
  }
}

/** Settle `promise` as an event of `loop` (a completion the process handles in its own turn). */
function settleOn<T>(loop: EventLoop, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    promise.then(
      (value) => loop.schedule(0, () => resolve(value)),
      (error) => loop.schedule(0, () => reject(error)),
    );
  });
}

class SimTransport implements Transport {
  readonly #network: SimNetwork;
  readonly #inner: MemoryTransport;
  readonly #loop: EventLoop;
  /** Incoming snapshot streams, to break when this process dies. */
  readonly #streams = new Set<(error: Error) => void>();

  constructor(network: SimNetwork, inner: MemoryTransport, loop: EventLoop) {
    this.#network = network;
    this.#inner = inner;
    this.#loop = loop;
  }

  get localAddress(): ServerAddress {
    return this.#inner.localAddress;
  }

  start(handler: TransportHandler): Promise<void> {
    const loop = this.#loop;
    const network = this.#network;
    const streams = this.#streams;
    return settleOn(
      loop,
      this.#inner.start({
        onMessage(message: Message, from: ServerAddress): void {
          network.deliverOn(loop, () => handler.onMessage(message, from));
        },
        onSnapshot(
          message: InstallSnapshotRequest,
          data: AsyncIterable<Uint8Array>,
          from: ServerAddress,
        ): Promise<void> {
          return network.carry(handler, message, data, from, loop, streams);
        },
      }),
    );
  }

  send(address: ServerAddress, message: Message): void {
    this.#inner.send(address, message);
  }

  sendSnapshot(
    address: ServerAddress,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    return settleOn(this.#loop, this.#inner.sendSnapshot(address, message, data));
  }

  /** Detach from the network; incoming snapshot streams break (the connection is reset). */
  close(): Promise<void> {
    for (const breakStream of [...this.#streams]) {
      breakStream(new TransportError(`connection to ${this.localAddress} reset`));
    }
    this.#network.detach(this.localAddress, this.#loop);
    return settleOn(this.#loop, this.#inner.close());
  }
}
