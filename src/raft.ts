/**
 * The public Raft node: drives the pure core with timers, storage, the
 * transport and the FSM, and turns its work into Promises.
 *
 * This file is the facade: each member checks its arguments and hands the
 * work to collaborators in `src/node/`, one concern each (after
 * hashicorp/raft's layout; `start.ts` wires them), all on one injectable
 * clock (`src/platform/clock.ts`).
 *
 * Most examples form a cluster with `formCluster` from `@raftd/raftd/testing`
 * (memory stores and network); the class example builds a node by hand.
 *
 * @module
 */

import { type Config, type ReloadableConfig, validateConfig } from "./config.ts";
import {
  type Configuration,
  EntryType,
  type RaftState,
  type ServerAddress,
  type ServerId,
} from "./core/types.ts";
import type { LeaderInfo } from "./errors.ts";
import type { FSM } from "./fsm.ts";
import {
  checkCreateOptions,
  checkFsm,
  checkId,
  checkStores,
  checkUpdateAddress,
  typeOf,
} from "./node/arguments.ts";
import { changeMembership } from "./node/membership_changes.ts";
import { read } from "./node/reads.ts";
import { hasExistingState, recoverCluster } from "./node/recovery.ts";
import { reloadConfig } from "./node/reload.ts";
import { type NodeParts, startNode } from "./node/start.ts";
import { collectStats, lastContact } from "./node/stats.ts";
import type {
  AddServerOptions,
  ApplyResult,
  CreateOptions,
  IndexResult,
  MembershipOptions,
  Observation,
  OperationOptions,
  RaftStats,
  RaftStores,
  ReadOptions,
} from "./node/types.ts";
import type { SnapshotInfo } from "./storage/types.ts";

export type * from "./node/types.ts";

const EMPTY = new Uint8Array(0);

/**
 * A Raft node. Create it with {@linkcode Raft.create}, whose `bootstrap`
 * option starts a new cluster.
 *
 * @typeParam R What the FSM's `apply` returns.
 *
 * @example A single-node cluster over memory stores
 * ```ts
 * import { Raft } from "./raft.ts";
 * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "./storage/mod.ts";
 * import { MemoryNetwork } from "./transport/mod.ts";
 * import type { FSMEntry } from "./fsm.ts";
 * const values: string[] = [];
 * const fsm = {
 *   apply: (e: FSMEntry) => values.push(new TextDecoder().decode(e.data)),
 *   snapshot: () => ({ persist: async () => {}, release: () => {} }),
 *   restore: async () => {},
 * };
 * const network = new MemoryNetwork();
 * const raft = await Raft.create({ id: "n1", heartbeatInterval: 20, electionTimeout: 100 }, fsm, {
 *   logStore: new MemoryLogStore(),
 *   stableStore: new MemoryStableStore(),
 *   snapshotStore: new MemorySnapshotStore(),
 *   transport: network.transport("n1"),
 * }, { bootstrap: { servers: [{ id: "n1", address: "n1", suffrage: "voter" }] } });
 * while (raft.state !== "leader") await new Promise((r) => setTimeout(r, 10));
 * const { index } = await raft.apply(new TextEncoder().encode("hello"));
 * console.log(index, values); // 3 ["hello"]
 * await raft.shutdown();
 * ```
 */
export class Raft<R = unknown> {
  /** This server's id. */
  readonly id: ServerId;
  #n: NodeParts<R>;

  private constructor(parts: NodeParts<R>) {
    this.id = parts.node.id;
    this.#n = parts;
  }

  /**
   * Start a node on its stores: restores the newest valid snapshot into the
   * FSM, loads the log, applies what is known committed, and starts the
   * transport and timers. A new cluster is bootstrapped by `options.bootstrap`
   * (used only on stores with no state, so safe on every start).
   *
   * @throws {TypeError} when `config`, `fsm` or `stores` lacks something or has a value of the
   * wrong type (the message names the field and shows what was given).
   * @throws {RangeError} when a number in `config` is out of range or two timings contradict.
   * @throws {CorruptionError} when every stored snapshot fails its checks.
   * @throws {StorageError} when the stores cannot be read.
   * @throws {TransportError} when the transport cannot start (e.g. it is closed).
   * @throws {ConfigurationError} when `options.bootstrap` has no voter or lacks this node.
   *
   * @example A node on disk, reachable over TCP
   * ```ts
   * import { Raft } from "./raft.ts";
   * import { FileLogStore, FileSnapshotStore, FileStableStore } from "./storage/mod.ts";
   * import { TcpTransport } from "./transport/mod.ts";
   * import { RecordingFSM } from "./testing/recording_fsm.ts";
   * const dir = await Deno.makeTempDir();
   * const transport = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * const logStore = await FileLogStore.open(`${dir}/log`);
   * const stableStore = await FileStableStore.open(`${dir}/stable`);
   * const snapshotStore = await FileSnapshotStore.open(`${dir}/snapshots`);
   * const raft = await Raft.create({ id: "n1" }, new RecordingFSM(), {
   *   logStore, stableStore, snapshotStore, transport,
   * }, { bootstrap: { servers: [{ id: "n1", address: transport.localAddress, suffrage: "voter" }] } });
   * await raft.shutdown();
   * await Promise.all([logStore.close(), stableStore.close()]);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async create<R>(
    config: Config,
    fsm: FSM<R>,
    stores: RaftStores,
    options?: CreateOptions,
  ): Promise<Raft<R>> {
    const resolved = validateConfig(config);
    checkFsm(fsm);
    checkStores(stores);
    return new Raft(await startNode(resolved, fsm, stores, checkCreateOptions(options)));
  }

  /**
   * Whether the stores hold any Raft state (a term, a log or a snapshot):
   * `false` means a brand-new server, to bootstrap or to add to a cluster.
   *
   * @throws {StorageError} when a store cannot be read.
   *
   * @example
   * ```ts
   * import { Raft } from "./raft.ts";
   * import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "./storage/mod.ts";
   * const [logStore, stableStore] = [new MemoryLogStore(), new MemoryStableStore()];
   * const snapshotStore = new MemorySnapshotStore();
   * console.log(await Raft.hasExistingState({ logStore, stableStore, snapshotStore })); // false
   * ```
   */
  static async hasExistingState(stores: Omit<RaftStores, "transport">): Promise<boolean> {
    return await hasExistingState(stores);
  }

  /**
   * Operator recovery after losing quorum (hashicorp's RecoverCluster, the
   * peers.json case): on a stopped node's stores, replay every stored entry
   * into the FSM, write a snapshot carrying `configuration`, and drop the log.
   * Start the node afterwards; do this on every surviving server with the
   * same configuration. Entries that were never committed may be kept.
   *
   * @throws {TypeError} when `config` or `configuration` is malformed.
   * @throws {ConfigurationError} when `configuration` has no voter.
   * @throws {InvalidStateError} when the stores hold no state (nothing to recover).
   * @throws {CorruptionError} when every stored snapshot fails its checks.
   * @throws {StorageError} when the stores cannot be read or written.
   *
   * @example Restart the survivor of a three-node cluster alone
   * ```ts
   * import { formCluster, RecordingFSM } from "../testing.ts";
   * import { Raft } from "./raft.ts";
   * const cluster = await formCluster(); // n1, n2, n3
   * await cluster.leader()!.apply(new TextEncoder().encode("kept"));
   * await cluster.shutdown(); // say n2 and n3 are lost for good
   * const { logStore, stableStore, snapshotStore } = cluster.node("n1");
   * const fsm = new RecordingFSM();
   * await Raft.recoverCluster({ id: "n1" }, fsm, { logStore, stableStore, snapshotStore }, {
   *   servers: [{ id: "n1", address: "n1", suffrage: "voter" }],
   * });
   * console.log(fsm.texts()); // ["kept"]
   * ```
   */
  static async recoverCluster<R>(
    config: Config,
    fsm: FSM<R>,
    stores: Omit<RaftStores, "transport">,
    configuration: Configuration,
  ): Promise<void> {
    await recoverCluster(validateConfig(config), fsm, stores, configuration);
  }

  /**
   * Write the first configuration of a brand-new cluster (hashicorp's
   * `BootstrapCluster`). Resolves once it is on disk; the node then elects
   * itself (a single voter) or campaigns with the others. A peer may reach the
   * node first and give it a term: prefer `create`'s `bootstrap` option.
   *
   * @throws {InvalidStateError} when this node already has state (bootstrap happens once).
   * @throws {ConfigurationError} when `configuration` has no voter.
   * @throws {TypeError} when `configuration` is malformed (the message names the server at fault).
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 }); // bootstraps n1
   * const servers = [{ id: "n1", address: "n1", suffrage: "voter" as const }];
   * await cluster.leader()!.bootstrapCluster({ servers })
   *   .catch((e: Error) => console.log(e.name)); // InvalidStateError
   * ```
   */
  async bootstrapCluster(configuration: Configuration): Promise<void> {
    await this.#n.proposals.bootstrap(configuration);
  }

  /**
   * Stop the node: timers, transport, pending operations (writes in flight
   * reject with {@linkcode LeadershipLostError}, outcome `"committed"` or
   * `"unknown"`, since another leader may commit them; the rest with
   * {@linkcode ShutdownError}); waits for in-flight disk writes (at most
   * `storageTimeout`). Stores stay open (they belong to the caller).
   * Idempotent; never rejects (a failing transport close is logged).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const raft = cluster.leader()!;
   * await raft.shutdown();
   * console.log(raft.state); // "shutdown"
   * ```
   */
  async shutdown(): Promise<void> {
    await this.#n.lifecycle.shutdown();
  }

  /**
   * Replicate `data` and apply it to the FSM. Resolves with the FSM's result
   * once the entry is committed (durable on a quorum) and applied here.
   * `options.timeout` covers the whole commit, not just the enqueue.
   *
   * @throws {TypeError} when `data` is not a `Uint8Array`.
   * @throws {NotLeaderError} when this node is not the leader (nothing was appended; `leader` names
   * the one it knows, to retry there).
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped (shutdown, a disk
   * failure: the `cause`), before the entry was applied: `outcome` is `"not_committed"` (a newer
   * leader overwrote it), `"committed"` (this node may not apply it) or `"unknown"` (a new leader
   * may still commit it: check before retrying a write that is not idempotent).
   * @throws {TimeoutError} when `options.timeout` passed first: `outcome` `"committed"` (it will be
   * applied) or `"unknown"`.
   * @throws {AbortError} when `options.signal` aborted first: `outcome` `"not_committed"` (before it
   * was proposed), `"committed"` or `"unknown"`.
   * @throws {LeadershipTransferError} while a leadership transfer is in progress (nothing appended).
   * @throws {InvalidStateError} while a restore is in progress (nothing appended).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down (nothing appended).
   * @throws {StorageError} when the node stopped after a storage or FSM failure (nothing appended).
   *
   * @example A write, and what a caller does with each failure
   * ```ts
   * import { LeadershipLostError, NotLeaderError, TimeoutError } from "./errors.ts";
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster();
   * const data = new TextEncoder().encode("x");
   * console.log((await cluster.leader()!.apply(data, { timeout: 5000 })).response); // 1
   * try {
   *   await cluster.nodes.find((n) => n.raft !== cluster.leader())!.raft.apply(data);
   * } catch (e) {
   *   if (e instanceof NotLeaderError) console.log("retry at", e.leader?.id);
   *   else if (e instanceof LeadershipLostError || e instanceof TimeoutError) {
   *     console.log(e.outcome === "unknown" ? "check before retrying" : e.outcome);
   *   } else throw e;
   * }
   * ```
   */
  apply(data: Uint8Array, options?: OperationOptions): Promise<ApplyResult<R>> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`apply: data must be a Uint8Array, got ${typeOf(data)}`));
    }
    const result = this.#n.proposals.propose(data, EntryType.Normal, "apply", options);
    return result as Promise<ApplyResult<R>>;
  }

  /**
   * Resolves once every entry before it is applied here (a no-op entry
   * committed and applied), with that entry's index. Use it after winning
   * leadership to serve reads from an up-to-date FSM.
   *
   * @throws {NotLeaderError} when this node is not the leader (nothing appended; see `leader`).
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before it was
   * applied: `outcome` `"not_committed"`, `"committed"` or `"unknown"` (see {@linkcode Raft.apply}).
   * @throws {TimeoutError} when `options.timeout` passed first: `outcome` `"committed"` or `"unknown"`.
   * @throws {AbortError} when `options.signal` aborted first: `outcome` `"not_committed"` (before it
   * was proposed), `"committed"` or `"unknown"`.
   * @throws {LeadershipTransferError} while a leadership transfer is in progress (nothing appended).
   * @throws {InvalidStateError} while a restore is in progress (nothing appended).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down (nothing appended).
   * @throws {StorageError} when the node stopped after a storage or FSM failure (nothing appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const { index } = await cluster.leader()!.barrier();
   * console.log(cluster.leader()!.appliedIndex >= index); // true
   * ```
   */
  async barrier(options?: OperationOptions): Promise<IndexResult> {
    const r = await this.#n.proposals.propose(EMPTY, EntryType.Noop, "barrier", options);
    return { index: r.index };
  }

  /**
   * Confirm with a quorum that this node is still the leader (a heartbeat
   * round trip; no log write).
   *
   * @throws {NotLeaderError} when this node is not the leader, or lost leadership before a quorum
   * confirmed it.
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"not_committed"`: a read
   * changes nothing).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` `"not_committed"`).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * await cluster.leader()!.verifyLeader({ timeout: 1000 });
   * ```
   */
  async verifyLeader(options?: OperationOptions): Promise<void> {
    const how = { lease: false, waitApply: false, op: "verifyLeader" };
    await read(this.#n.node, this.#n, how, options);
  }

  /**
   * A linearizable read point: resolves with an index once this leader has
   * confirmed its leadership and applied up to it; reads of the FSM are then
   * linearizable. With `lease`, a valid leader lease (`leaderLeaseTimeout`
   * since a quorum last answered) skips the round trip.
   *
   * @throws {NotLeaderError} when this node is not the leader, or lost leadership before a quorum
   * confirmed it.
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"not_committed"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` `"not_committed"`).
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the read ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const index = await raft.readIndex(); // or { lease: true }
   * console.log(raft.appliedIndex >= index); // true: read the FSM now
   * ```
   */
  readIndex(options?: ReadOptions): Promise<number> {
    const how = { lease: options?.lease === true, waitApply: true, op: "readIndex" };
    return read(this.#n.node, this.#n, how, options);
  }

  /**
   * Add a voter: it joins as `staging` (receives the log, does not vote) and
   * is promoted once within `catchupMargin` entries of the leader. Resolves
   * when the change commits. An id already present stays where it is (a
   * non-voter becomes staging); moving it to another address needs
   * `options.updateAddress`, so a typo or a second machine reusing an id
   * cannot cut a member off.
   *
   * @throws {TypeError} when `id` or `address` is not a non-empty string, or
   * `options.updateAddress` not a boolean.
   * @throws {ConfigurationError} when the change is refused: another change is still uncommitted
   * (retried for up to 10 s first when `prevIndex` is 0), `prevIndex` is not the latest
   * configuration's index, another server has `address`, `id` is a member at another address
   * without `options.updateAddress`, or no voter would be left.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing appended).
   * @throws {StorageError} when the node stopped after a storage or FSM failure (nothing appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * const { index } = await cluster.leader()!.addVoter("n4", "n4");
   * console.log(cluster.leader()!.getConfiguration().index === index); // true
   * ```
   */
  addVoter(id: ServerId, address: ServerAddress, options?: AddServerOptions): Promise<IndexResult> {
    checkId(id, "addVoter: id");
    checkId(address, "addVoter: address");
    const updateAddress = checkUpdateAddress(options, "addVoter");
    const change = { op: "addVoter" as const, id, address, updateAddress };
    return changeMembership(this.#n.node, this.#n, change, "addVoter", options);
  }

  /**
   * Add a server that receives the log but does not vote nor count towards
   * quorum (a read replica). Resolves when the change commits. Refused as
   * {@linkcode Raft.addVoter} is: at a taken address, or moving a member
   * without `options.updateAddress`.
   *
   * @throws {TypeError} when `id` or `address` is not a non-empty string, or
   * `options.updateAddress` not a boolean.
   * @throws {ConfigurationError} when the change is refused, as {@linkcode Raft.addVoter}'s is.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing appended).
   * @throws {StorageError} when the node stopped after a storage or FSM failure (nothing appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * await cluster.leader()!.addNonvoter("replica", "replica");
   * ```
   */
  addNonvoter(
    id: ServerId,
    address: ServerAddress,
    options?: AddServerOptions,
  ): Promise<IndexResult> {
    checkId(id, "addNonvoter: id");
    checkId(address, "addNonvoter: address");
    const updateAddress = checkUpdateAddress(options, "addNonvoter");
    const change = { op: "addNonvoter" as const, id, address, updateAddress };
    return changeMembership(this.#n.node, this.#n, change, "addNonvoter", options);
  }

  /**
   * Turn a voter into a non-voter. Resolves when the change commits.
   *
   * @throws {TypeError} when `id` is not a non-empty string.
   * @throws {ConfigurationError} when the change is refused: another change is still uncommitted
   * (retried for up to 10 s first when `prevIndex` is 0), `prevIndex` is not the latest
   * configuration's index, the server is not a member, or no voter would be left.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing appended).
   * @throws {StorageError} when the node stopped after a storage or FSM failure (nothing appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * await cluster.leader()!.demoteVoter(cluster.nodes.find((n) => n.raft !== cluster.leader())!.id);
   * ```
   */
  demoteVoter(id: ServerId, options?: MembershipOptions): Promise<IndexResult> {
    checkId(id, "demoteVoter: id");
    return changeMembership(this.#n.node, this.#n, { op: "demote", id }, "demoteVoter", options);
  }

  /**
   * Remove a server. A leader removing itself hands over and steps down once
   * the change commits. Resolves when the change commits.
   *
   * @throws {TypeError} when `id` is not a non-empty string.
   * @throws {ConfigurationError} when the change is refused, as {@linkcode Raft.demoteVoter}'s is.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {LeadershipLostError} when leadership was lost, or this node stopped, before the change
   * was applied (`outcome` `"not_committed"`, `"committed"` or `"unknown"`; the `cause` says why).
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"committed"` or `"unknown"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` as for {@linkcode Raft.apply}).
   * @throws {InvalidStateError} while a restore is in progress.
   * @throws {RangeError} when `options.timeout` or `options.prevIndex` is out of range.
   * @throws {ShutdownError} when the node is shut down (nothing appended).
   * @throws {StorageError} when the node stopped after a storage or FSM failure (nothing appended).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * const raft = cluster.leader()!;
   * const other = cluster.nodes.find((n) => n.raft !== raft)!;
   * await raft.removeServer(other.id, { prevIndex: raft.getConfiguration().index });
   * ```
   */
  removeServer(id: ServerId, options?: MembershipOptions): Promise<IndexResult> {
    checkId(id, "removeServer: id");
    return changeMembership(this.#n.node, this.#n, { op: "remove", id }, "removeServer", options);
  }

  /**
   * The latest configuration (in effect as soon as appended, committed or
   * not) and the index of the entry that set it. Never throws.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * const { configuration } = cluster.leader()!.getConfiguration();
   * console.log(configuration.servers.map((s) => s.suffrage)); // ["voter", "voter", "voter"]
   * ```
   */
  getConfiguration(): { index: number; configuration: Configuration } {
    return this.#n.core.latestConfiguration();
  }

  /**
   * Hand leadership to `id` (or the most up-to-date voter): catch it up,
   * then tell it to start an election. Resolves once another node leads.
   * Proposals are refused while the transfer is in progress.
   *
   * @throws {TypeError} when `id` is given and is not a non-empty string.
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {LeadershipTransferError} when the target is this node, unknown or not a voter, there is
   * no other voter, or the target did not take over within an election timeout.
   * @throws {TimeoutError} when `options.timeout` passed first (`outcome` `"not_committed"`).
   * @throws {AbortError} when `options.signal` aborted first (`outcome` `"not_committed"`); a transfer
   * under way goes on, as after a timeout, until the target leads or an election timeout passes.
   * @throws {RangeError} when `options.timeout` is not a positive number.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * const target = cluster.nodes.find((n) => n.raft !== cluster.leader())!;
   * await cluster.leader()!.leadershipTransfer(target.id, { timeout: 5000 });
   * ```
   */
  leadershipTransfer(id?: ServerId, options?: OperationOptions): Promise<void> {
    return this.#n.proposals.transferLeadership(id, options);
  }

  /**
   * Take a snapshot now and compact the log, keeping `trailingLogs` entries
   * (manual compaction; automatic ones follow `snapshotThreshold`).
   *
   * @throws {InvalidStateError} when a snapshot is already being taken, or nothing was applied since
   * the last one.
   * @throws {StorageError} when the snapshot cannot be written, or the node stopped after a failure.
   * @throws {ShutdownError} when the node is shut down.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const { index } = await cluster.leader()!.snapshot();
   * console.log(index > 0); // true
   * ```
   */
  async snapshot(): Promise<SnapshotInfo> {
    return await this.#n.snapshots.takeOnRequest();
  }

  /**
   * Replace the cluster's state with a user snapshot (leader only; e.g. from
   * a backup). It travels through the log as a run of entries and commits
   * like a write (a quorum, one index; later writes see it); every FSM takes
   * it on applying the last one. Resolves once committed and held by this
   * node's FSM. A leader failing half way leaves a restore no node applies.
   * Proposals wait meanwhile; the state is held in memory while written.
   *
   * @throws {NotLeaderError} when this node is not the leader.
   * @throws {InvalidStateError} when a restore is already in progress.
   * @throws {LeadershipLostError} when leadership was lost before the restore committed (see its
   * `outcome`: check the cluster's state before retrying when `"unknown"`).
   * @throws {TimeoutError} when `options.timeout` passed first (with its `outcome`).
   * @throws {AbortError} when `options.signal` aborted first (with its `outcome`).
   * @throws {Error} whatever the FSM's `restore` or reading `data` threw.
   * @throws {ShutdownError} when the node is shut down, or shuts down before the operation ends.
   * @throws {StorageError} when the node stopped after a storage or state machine failure.
   *
   * @example
   * ```ts
   * import { formCluster, RecordingFSM } from "../testing.ts";
   * await using cluster = await formCluster();
   * const backup = new RecordingFSM();
   * backup.apply({ index: 1, term: 1, data: new TextEncoder().encode("from the backup") });
   * const chunks: Uint8Array[] = [];
   * await backup.snapshot().persist({ write: async (c) => void chunks.push(c) });
   * await cluster.leader()!.restore((async function* () { yield* chunks; })());
   * ```
   */
  async restore(data: AsyncIterable<Uint8Array>, options?: OperationOptions): Promise<void> {
    await this.#n.proposals.restore(data, options);
  }

  /**
   * Be told of state changes, leader changes, membership changes, failed
   * heartbeats and snapshots. `filter` picks which; a callback that throws is
   * logged and the others still run. Returns a function that unsubscribes.
   *
   * @throws {TypeError} when `callback` is not a function.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster(); // three voters
   * const stop = cluster.leader()!.observe((o) => console.log(o.type), (o) => o.type === "leader");
   * stop();
   * ```
   */
  observe(callback: (o: Observation) => void, filter?: (o: Observation) => boolean): () => void {
    if (typeof callback !== "function") {
      throw new TypeError(`observe: callback must be a function, got ${typeOf(callback)}`);
    }
    return this.#n.observers.observe(callback, filter);
  }

  /**
   * Change timing and snapshot settings at run time: `heartbeatInterval`,
   * `electionTimeout`, `leaderLeaseTimeout`, `snapshotThreshold`,
   * `snapshotInterval`, `trailingLogs` and `autoPromoteNonvoters`. Other keys
   * (`preVote`, `checkQuorum`, `maxAppendEntries`, …) are fixed for the node's
   * life and refused rather than ignored.
   *
   * @throws {TypeError} when `changes` names a key that cannot change at run time, or a value has
   * the wrong type (the message shows it).
   * @throws {RangeError} when a value is out of range or the timings contradict each other.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * cluster.leader()!.reloadConfig({ snapshotThreshold: 100, trailingLogs: 50 });
   * ```
   */
  reloadConfig(changes: ReloadableConfig): void {
    reloadConfig(this.#n, changes);
  }

  /**
   * Role of the node: `"follower"`, `"candidate"`, `"leader"`, or
   * `"shutdown"` (after {@linkcode Raft.shutdown} or a failure).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.state); // "leader"
   * ```
   */
  get state(): RaftState {
    return this.#n.lifecycle.state(this.#n.core.state);
  }

  /**
   * The leader as far as this node knows (`undefined` during an election).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.leader); // { id: "n1", address: "n1" }
   * ```
   */
  get leader(): LeaderInfo | undefined {
    return this.#n.loop.leader();
  }

  /**
   * `Date.now()`-style time of the last message from the leader (now, on the
   * leader; `undefined` before any).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster();
   * const follower = cluster.nodes.find((n) => n.raft !== cluster.leader())!.raft;
   * console.log(Date.now() - (follower.lastContact ?? 0) < 10_000); // true
   * ```
   */
  get lastContact(): number | undefined {
    return lastContact(this.#n);
  }

  /**
   * Current term.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.currentTerm >= 1); // true
   * ```
   */
  get currentTerm(): number {
    return this.#n.core.term;
  }

  /**
   * Index of the last entry in the log (committed or not).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.lastIndex >= 1); // true
   * ```
   */
  get lastIndex(): number {
    return this.#n.core.lastIndex;
  }

  /**
   * Index of the last entry known to be committed.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.commitIndex >= 1); // true
   * ```
   */
  get commitIndex(): number {
    return this.#n.core.commitIndex;
  }

  /**
   * Index of the last entry applied to the FSM.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.appliedIndex >= 1); // true
   * ```
   */
  get appliedIndex(): number {
    return this.#n.runner.appliedIndex;
  }

  /**
   * Whether this server learned it was removed: the configuration it applied
   * last does not list it, though an earlier one did. With
   * `config.shutdownOnRemove` (the default) the node then shuts down.
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.removed); // false
   * ```
   */
  get removed(): boolean {
    return this.#n.removal.removed;
  }

  /**
   * Index of the newest snapshot taken or installed here (0 before any).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * console.log(cluster.nodes[0].raft.lastSnapshotIndex); // 0
   * ```
   */
  get lastSnapshotIndex(): number {
    return this.#n.snapshots.last.index;
  }

  /**
   * Counters, gauges and latency histograms (for metrics and status pages).
   *
   * @example
   * ```ts
   * import { formCluster } from "../testing.ts";
   * await using cluster = await formCluster({ size: 1 });
   * const stats = cluster.nodes[0].raft.stats();
   * console.log(stats.state, stats.fsyncs > 0); // "leader" true
   * ```
   */
  stats(): RaftStats {
    return collectStats(this.#n);
  }
}
