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
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory_transport.ts";
import type { Transport, TransportHandler } from "../../src/transport/types.ts";
import type { EventLoop, ScheduledEvent, Scheduler } from "./scheduler.ts";

/** Options of {@linkcode SimNetwork}. */
export interface SimNetworkOptions {
  /** Randomness in [0, 1) for every fault decision. */
  random: () => number;
  /** Virtual ms a snapshot chunk of `bytes` takes to arrive (bandwidth, jitter). Default 1. */
  chunkDelay?: (bytes: number) => number;
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
  readonly #chunkDelay: (bytes: number) => number;

  /** A network whose delays run on `scheduler`'s world loop. */
  constructor(scheduler: Scheduler, options: SimNetworkOptions) {
    const world = scheduler.world;
    this.#world = world;
    this.#chunkDelay = options.chunkDelay ?? (() => 1);
    this.memory = new MemoryNetwork({
      random: options.random,
      timers: {
        setTimeout: (callback, ms) => world.schedule(ms, callback),
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
    return new SimTransport(this, this.memory.transport(address), loop);
  }

  /** @internal Pace a snapshot stream: each chunk arrives as an event of the receiver's loop. */
  async *pace(data: AsyncIterable<Uint8Array>, loop: EventLoop): AsyncGenerator<Uint8Array> {
    for await (const chunk of data) {
      await onLoop(loop, this.#chunkDelay(chunk.length));
      this.stats.snapshotChunks++;
      yield chunk;
    }
  }

  /** @internal The world's loop (never paused). */
  get world(): EventLoop {
    return this.#world;
  }
}

/** Resolves as an event of `loop`, `delay` ms from now; never when the loop dies first. */
function onLoop(loop: EventLoop, delay: number): Promise<void> {
  return new Promise((resolve) => loop.schedule(delay, resolve));
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
    return settleOn(
      loop,
      this.#inner.start({
        onMessage(message: Message, from: ServerAddress): void {
          loop.schedule(0, () => handler.onMessage(message, from));
        },
        onSnapshot(
          message: InstallSnapshotRequest,
          data: AsyncIterable<Uint8Array>,
          from: ServerAddress,
        ): Promise<void> {
          network.stats.snapshotsSent++;
          return new Promise<void>((resolve, reject) => {
            loop.schedule(0, () => {
              handler.onSnapshot(message, network.pace(data, loop), from).then(
                () => {
                  network.stats.snapshotsDelivered++;
                  resolve();
                },
                reject,
              );
            });
          });
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

  close(): Promise<void> {
    return settleOn(this.#loop, this.#inner.close());
  }
}
