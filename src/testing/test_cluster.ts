/**
 * An in-process cluster of real {@linkcode Raft} nodes on memory stores and a
 * {@linkcode MemoryNetwork}, for users' own tests: form it in one call, inject
 * faults through the network, crash and restart nodes on the stores they had.
 *
 * @module
 */

import type { Config } from "../config.ts";
import type { ServerId } from "../core/types.ts";
import type { FSM } from "../fsm.ts";
import { Raft } from "../raft.ts";
import { MemoryLogStore } from "../storage/memory_log_store.ts";
import { MemorySnapshotStore } from "../storage/memory_snapshot_store.ts";
import { MemoryStableStore } from "../storage/memory_stable_store.ts";
import { MemoryNetwork } from "../transport/memory_transport.ts";
import { RecordingFSM } from "./recording_fsm.ts";
import { describeValue } from "../describe_value.ts";

/** Timings that elect a leader in a fraction of a second; the default of {@linkcode formCluster}. */
const FAST_TIMINGS: Omit<Config, "id"> = { heartbeatInterval: 20, electionTimeout: 200 };

/** How often the helper looks at the nodes while it waits, in ms. */
const POLL_MS = 5;

/** Options of {@linkcode formCluster}. */
export interface TestClusterOptions<R> {
  /**
   * Builds the state machine of a node; called again when a node restarts.
   * Default: a {@linkcode RecordingFSM} per node.
   */
  fsm?: (id: ServerId) => FSM<R>;
  /** Number of voters. Default 3. */
  size?: number;
  /** Server ids; default `n1`, `n2`, … (its length wins over `size`). */
  ids?: readonly ServerId[];
  /**
   * Configuration of every node (its `id` is set per node). Default: heartbeats
   * every 20 ms, election timeout 200 ms, the rest as in `DEFAULT_CONFIG`.
   */
  config?: Omit<Config, "id">;
  /** The network to attach to. Default: a new `MemoryNetwork` seeded with 1. */
  network?: MemoryNetwork;
  /** How long to wait for the first leader, in ms. Default 10000. */
  timeout?: number;
}

/** One node of a {@linkcode TestCluster}: its `Raft` and the stores it keeps across restarts. */
export interface TestClusterNode<R> {
  /** Server id, also its address on the memory network. */
  readonly id: ServerId;
  /** The running node (a new instance after each restart). */
  raft: Raft<R>;
  /** Its state machine (a new one after each restart, rebuilt from snapshot and log). */
  fsm: FSM<R>;
  /** Its log; survives restarts. */
  readonly logStore: MemoryLogStore;
  /** Its term and vote; survive restarts. */
  readonly stableStore: MemoryStableStore;
  /** Its snapshots; survive restarts. */
  readonly snapshotStore: MemorySnapshotStore;
}

/** Options of the waits of a {@linkcode TestCluster}. */
export interface TestClusterWaitOptions {
  /** Give up after this many ms. Default 10000. */
  timeout?: number;
  /** Give up when this signal aborts. */
  signal?: AbortSignal;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A running in-process cluster; create it with {@linkcode formCluster}.
 * Supports `await using`, which shuts every node down at the end of the scope.
 *
 * @example Crash the leader and watch another take over
 * ```ts
 * import { formCluster } from "./test_cluster.ts";
 * import type { FSMEntry } from "../fsm.ts";
 *
 * const fsm = () => ({
 *   apply: (e: FSMEntry) => e.data.length,
 *   snapshot: () => ({ persist: async () => {}, release() {} }),
 *   restore: async () => {},
 * });
 * await using cluster = await formCluster();
 * const first = cluster.leader()!;
 * await cluster.stop(first.id);
 * const second = await cluster.waitForLeader();
 * console.log(first.id !== second.id); // true
 * ```
 */
export class TestCluster<R> {
  /** The network the nodes talk over: partition, drop, delay, duplicate, reorder through it. */
  readonly network: MemoryNetwork;
  /** The nodes, in the order of their ids. */
  readonly nodes: readonly TestClusterNode<R>[];
  readonly #makeFsm: (id: ServerId) => FSM<R>;
  readonly #config: Omit<Config, "id">;

  /**
   * Use {@linkcode formCluster}, which creates the nodes and bootstraps them.
   *
   * @ignore
   */
  constructor(
    network: MemoryNetwork,
    nodes: readonly TestClusterNode<R>[],
    makeFsm: (id: ServerId) => FSM<R>,
    config: Omit<Config, "id">,
  ) {
    this.network = network;
    this.nodes = nodes;
    this.#makeFsm = makeFsm;
    this.#config = config;
  }

  /**
   * The node with id `id`.
   *
   * @throws {RangeError} when there is no such node (the message lists the ids).
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * const n2 = cluster.node("n2");
   * console.log(n2.raft.state);
   * ```
   */
  node(id: ServerId): TestClusterNode<R> {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) {
      throw new RangeError(
        `no node ${JSON.stringify(id)} in this cluster; its nodes are ${
          this.nodes.map((n) => n.id).join(", ")
        }`,
      );
    }
    return node;
  }

  /**
   * The running leader with the highest term, if any. During a partition an
   * old leader may still think it leads in an older term; it is not returned.
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * const leader = cluster.leader();
   * if (leader) await leader.apply(new Uint8Array([1]));
   * ```
   */
  leader(): Raft<R> | undefined {
    let best: Raft<R> | undefined;
    for (const { raft } of this.nodes) {
      if (raft.state === "leader" && (best === undefined || raft.currentTerm > best.currentTerm)) {
        best = raft;
      }
    }
    return best;
  }

  /**
   * Waits until a leader exists and returns it.
   *
   * @throws {Error} when no leader emerged within `timeout` (the message lists each node's state).
   * @throws {DOMException} `AbortError` (the signal's reason) when `signal` aborts first.
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * cluster.network.heal();
   * const leader = await cluster.waitForLeader({ timeout: 5000 });
   * ```
   */
  async waitForLeader(options: TestClusterWaitOptions = {}): Promise<Raft<R>> {
    let leader: Raft<R> | undefined;
    await this.waitFor("a leader", () => (leader = this.leader()) !== undefined, options);
    return leader!;
  }

  /**
   * Waits until `condition` holds (it is polled every few ms).
   *
   * @throws {Error} when it did not hold within `timeout`, naming `what` and each node's state.
   * @throws {DOMException} `AbortError` (the signal's reason) when `signal` aborts first.
   *
   * @example Wait until every node applied the same index
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * const { index } = await cluster.leader()!.apply(new Uint8Array([1]));
   * await cluster.waitFor("all applied", () => cluster.nodes.every((n) => n.raft.appliedIndex >= index));
   * ```
   */
  async waitFor(
    what: string,
    condition: () => boolean,
    options: TestClusterWaitOptions = {},
  ): Promise<void> {
    const timeout = options.timeout ?? 10_000;
    const deadline = performance.now() + timeout;
    for (;;) {
      options.signal?.throwIfAborted();
      if (condition()) return;
      if (performance.now() >= deadline) {
        const states = this.nodes.map((n) => `${n.id}: ${n.raft.state} term ${n.raft.currentTerm}`);
        throw new Error(`timed out after ${timeout} ms waiting for ${what} (${states.join(", ")})`);
      }
      await sleep(POLL_MS);
    }
  }

  /**
   * Stops node `id` as a crash would leave it: its stores keep what was written.
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * await cluster.stop("n1");
   * console.log(cluster.node("n1").raft.state); // "shutdown"
   * ```
   */
  async stop(id: ServerId): Promise<void> {
    await this.node(id).raft.shutdown();
  }

  /**
   * Starts node `id` again on the stores it had, with a new state machine
   * (stopping it first if it runs). Resolves with the node once it has started.
   *
   * @throws {RangeError} when there is no such node.
   * @throws {Error} what {@linkcode Raft.create} throws (e.g. a `CorruptionError`
   * from stores a test damaged).
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * await cluster.stop("n3");
   * const n3 = await cluster.restart("n3");
   * console.log(n3.raft.state); // "follower"
   * ```
   */
  async restart(id: ServerId): Promise<TestClusterNode<R>> {
    const node = this.node(id);
    if (node.raft.state !== "shutdown") await node.raft.shutdown();
    const fsm = this.#makeFsm(id);
    node.raft = await Raft.create<R>({ ...this.#config, id }, fsm, {
      logStore: node.logStore,
      stableStore: node.stableStore,
      snapshotStore: node.snapshotStore,
      transport: this.network.transport(id),
    });
    node.fsm = fsm;
    return node;
  }

  /**
   * Shuts every node down and closes the network.
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * await using cluster = await formCluster();
   * await cluster.shutdown();
   * ```
   */
  async shutdown(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.raft.shutdown()));
    await this.network.close();
  }

  /**
   * Same as {@linkcode TestCluster.shutdown}, for `await using`.
   *
   * @example
   * ```ts
   * import { formCluster } from "./test_cluster.ts";
   * {
   *   await using cluster = await formCluster();
   *   // … the test …
   * } // every node is shut down here, even when the test threw
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Forms a cluster of `size` voters (default 3) in this process, bootstraps it
 * and waits until it has a leader that every node follows and has caught up
 * with. Every node runs the real `Raft` on memory
 * stores; all of them talk over one {@linkcode MemoryNetwork}.
 *
 * @throws {TypeError} when `options` is not an object or `fsm` not a function.
 * @throws {RangeError} when `size` is not a positive integer or `ids` repeats an id.
 * @throws {Error} when no leader emerged within `timeout` (the nodes are shut down first).
 *
 * @example Replicate a command to three nodes
 * ```ts
 * import { formCluster } from "./test_cluster.ts";
 * import type { FSMEntry } from "../fsm.ts";
 *
 * class Sum {
 *   total = 0;
 *   apply(e: FSMEntry) { return this.total += e.data[0]; }
 *   snapshot() { return { persist: async () => {}, release() {} }; }
 *   async restore() {}
 * }
 * const cluster = await formCluster({ fsm: () => new Sum() });
 * const { response } = await cluster.leader()!.apply(new Uint8Array([7]));
 * console.log(response); // 7
 * await cluster.shutdown();
 * ```
 */
export async function formCluster<R = number>(
  options: TestClusterOptions<R> = {},
): Promise<TestCluster<R>> {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  }
  const makeFsm = options.fsm ?? (() => new RecordingFSM() as unknown as FSM<R>);
  if (typeof makeFsm !== "function") {
    throw new TypeError(
      `options.fsm must be a function returning a state machine, got ${
        describeValue(options?.fsm)
      }`,
    );
  }
  const size = options.ids?.length ?? options.size ?? 3;
  if (!Number.isInteger(size) || size <= 0) {
    throw new RangeError(`options.size must be a positive integer, got ${describeValue(size)}`);
  }
  const ids = options.ids ?? Array.from({ length: size }, (_, i) => `n${i + 1}`);
  if (new Set(ids).size !== ids.length) {
    throw new RangeError(`options.ids must not repeat an id, got ${JSON.stringify(ids)}`);
  }
  const config = { ...FAST_TIMINGS, ...options.config };
  const network = options.network ?? new MemoryNetwork({ seed: 1 });
  const nodes: TestClusterNode<R>[] = [];
  const cluster = new TestCluster<R>(network, nodes, makeFsm, config);
  try {
    for (const id of ids) {
      const fsm = makeFsm(id);
      const logStore = new MemoryLogStore();
      const stableStore = new MemoryStableStore();
      const snapshotStore = new MemorySnapshotStore();
      const raft = await Raft.create<R>({ ...config, id }, fsm, {
        logStore,
        stableStore,
        snapshotStore,
        transport: network.transport(id),
      });
      nodes.push({ id, raft, fsm, logStore, stableStore, snapshotStore });
    }
    // Every node starts from the same configuration (safe, as in hashicorp/raft), so each
    // can campaign at once instead of waiting to hear it from the first leader.
    const configuration = {
      servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
    };
    for (const node of nodes) await node.raft.bootstrapCluster(configuration);
    await cluster.waitFor("a leader that every node follows and has caught up with", () => {
      const leader = cluster.leader();
      return leader !== undefined && leader.commitIndex > 0 &&
        nodes.every((n) =>
          n.raft.leader?.id === leader.id && n.raft.appliedIndex >= leader.commitIndex
        );
    }, { timeout: options.timeout });
  } catch (e) {
    await cluster.shutdown();
    throw e;
  }
  return cluster;
}
