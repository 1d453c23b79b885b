/**
 * The Raft protocol as a pure, deterministic state machine (after etcd's
 * `raft` package). Inputs: `tick()`, `step(message)`, `propose(...)`,
 * `readIndex(...)`, membership and transfer requests, and acknowledgements
 * that a {@linkcode Ready} was persisted. Output: `Ready` batches of entries
 * and hard state to persist, messages to send, committed entries to apply,
 * snapshots to install and read states to release.
 *
 * No I/O, no clock, no randomness of its own: the same inputs always give
 * the same outputs, which is what makes seeded simulation possible.
 *
 * @module
 */

import {
  ConfigurationError,
  InvalidStateError,
  LeadershipTransferError,
  NotLeaderError,
} from "../errors.ts";
import { MAX_INDEX, MAX_TERM, mayAdoptTerm } from "./limits.ts";
import { entryBytes, RaftLog } from "./log.ts";
import {
  applyChange,
  checkStartingConfiguration,
  cloneConfiguration,
  type ConfigurationChange,
  decodeConfiguration,
  encodeConfiguration,
  isVoter,
  quorumValue,
  voterIds,
} from "./membership.ts";
import { Progress } from "./progress.ts";
import { ReadOnlyQueue } from "./read_only.ts";
import { type StoredLog, StoredLogBuilder } from "./stored_log.ts";
import {
  type AppendRequest,
  type Configuration,
  type Entry,
  EntryType,
  type HardState,
  type HeartbeatRequest,
  type InstallSnapshotRequest,
  type Message,
  type RaftState,
  type ReadState,
  type ServerId,
  type SnapshotMeta,
  type VoteRequest,
} from "./types.ts";

/** Settings of the core, in ticks. */
export interface CoreOptions {
  /** This server's id. */
  id: ServerId;
  /** Ticks without a leader before an election (randomized in [n, 2n)). */
  electionTicks: number;
  /** Ticks between leader heartbeats. */
  heartbeatTicks: number;
  /** Ticks a leader may serve lease reads after a quorum acknowledged it; below `electionTicks`. */
  leaseTicks: number;
  /** Run a pre-vote before each election. */
  preVote: boolean;
  /** Leaders step down without a quorum; followers ignore votes while they have a leader. */
  checkQuorum: boolean;
  /** Most entries per append. */
  maxAppendEntries: number;
  /** Most payload bytes per append. */
  maxAppendBytes: number;
  /** Most pipelined appends per follower. */
  maxInflight: number;
  /** Staging servers within this many entries of the leader are promoted. */
  catchupMargin: number;
  /** Promote non-voters too once caught up. */
  autoPromoteNonvoters: boolean;
  /** Most committed entries per Ready. */
  maxApplyBatch: number;
  /**
   * Bytes of durable entries kept in memory (entry data plus a fixed
   * overhead each, see `entryBytes`); entries not yet durable are always
   * kept. Older entries are read back from storage through
   * {@linkcode Ready.loads} when a follower or the FSM needs them.
   * Default: unbounded (everything since the last compaction).
   */
  maxCacheBytes?: number;
  /**
   * Bytes of committed entries handed out for application and not yet
   * reported applied ({@linkcode RaftCore.appliedTo}); more are handed out
   * once some are. Default: unbounded (no `appliedTo` calls needed).
   */
  maxApplyBytes?: number;
  /** Randomness in [0, 1). */
  random: () => number;
}

/** What a node starts from: what its storage holds. */
export interface CoreInitialState {
  /** Stored term, vote, commit hint. */
  hardState?: HardState;
  /** Newest local snapshot; the FSM has been restored from it. */
  snapshot?: SnapshotMeta;
  /** Stored log entries, contiguous, in order (ignored when `log` is given). */
  entries?: Entry[];
  /** The stored log summarized (a long log need not be held whole to start a node). */
  log?: StoredLog;
}

/**
 * A request to read log entries `lo..hi` (inclusive, all durable) from the
 * log store, about `maxBytes` of data at most (at least one entry). Answer
 * with {@linkcode RaftCore.loaded} (fewer entries, or none on failure, are
 * fine); answers that arrive after the log changed are checked and dropped.
 */
export interface LogLoad {
  /** Identifies the request in {@linkcode RaftCore.loaded}. */
  id: number;
  /** First index to read. */
  lo: number;
  /** Last index to read. */
  hi: number;
  /** Most bytes of entry data to read (at least one entry). */
  maxBytes: number;
}

/** Role and leader, reported when they change. */
export interface SoftState {
  /** The node's role. */
  state: RaftState;
  /** Current leader, or "" when unknown. */
  leader: ServerId;
  /** Current term. */
  term: number;
}

/**
 * One batch of work for the driver. Persist `snapshot` (already stored by
 * the transport; restore the FSM from it), then truncate the log at
 * `entries[0].index` and append `entries`, then persist `hardState` when
 * `mustSync`; then call {@linkcode RaftCore.advance}. `messages` may be sent
 * at once; `committed` may be applied at once.
 */
export interface Ready {
  /** Sequence number; persist and advance Readies in this order. */
  seq: number;
  /** Present when role, leader or term changed. */
  softState?: SoftState;
  /** Present when term, vote or commit changed. */
  hardState?: HardState;
  /** Whether term or vote changed (commit alone may be written lazily). */
  mustSync: boolean;
  /** A snapshot received from the leader to install. */
  snapshot?: SnapshotMeta;
  /** Entries to append (after truncating any stored entries from entries[0].index). */
  entries: Entry[];
  /** Committed entries to apply, in order. */
  committed: Entry[];
  /** Entries to read from the log store and hand back with {@linkcode RaftCore.loaded}. */
  loads: LogLoad[];
  /** Messages to send now. */
  messages: Message[];
  /** Read requests confirmed: serve once applied up to their index. */
  readStates: ReadState[];
  /** Read requests dropped (leadership lost). */
  droppedReads: number[];
}

type InternalState = "follower" | "precandidate" | "candidate" | "leader";

interface HeldMessage {
  seq: number;
  message: Message;
}

interface ConfigRecord {
  index: number;
  configuration: Configuration;
}

const EMPTY = new Uint8Array(0);
const NO_ENTRIES: readonly Entry[] = Object.freeze([]);
const ROUND_RING = 256;
/** A load unanswered for this many election timeouts is forgotten (and may be asked again). */
const LOAD_TIMEOUT_ELECTIONS = 2;

interface LoadInFlight {
  lo: number;
  hi: number;
  /** Tick it was asked at. */
  tick: number;
  /** For the FSM (committed entries) rather than for followers. */
  apply: boolean;
}

/**
 * The Raft state machine of one server.
 *
 * @example A single-voter cluster electing itself and committing an entry
 * ```ts
 * import { RaftCore } from "./raft_core.ts";
 * import { EntryType } from "./types.ts";
 * const core = new RaftCore({
 *   id: "n1", electionTicks: 10, heartbeatTicks: 1, leaseTicks: 8, preVote: true,
 *   checkQuorum: true, maxAppendEntries: 64, maxAppendBytes: 1 << 20, maxInflight: 8,
 *   catchupMargin: 10, autoPromoteNonvoters: false, maxApplyBatch: 64, random: () => 0.5,
 * }, { entries: [] });
 * core.bootstrap({ servers: [{ id: "n1", address: "a", suffrage: "voter" }] });
 * for (let i = 0; i < 40 && core.state !== "leader"; i++) {
 *   core.tick();
 *   while (core.hasReady()) core.advance(core.ready());
 * }
 * core.propose([new TextEncoder().encode("x")]);
 * const rd = core.ready();
 * core.advance(rd);
 * console.log(core.ready().committed.some((e) => e.type === EntryType.Normal)); // true
 * ```
 */
export class RaftCore {
  /** This server's id. */
  readonly id: ServerId;
  #opts: CoreOptions;

  #term = 0;
  #vote: ServerId = "";
  #leader: ServerId = "";
  #state: InternalState = "follower";
  #log: RaftLog;

  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  /** Ticks after start during which votes are refused (keeps a leader's lease valid across our restart). */
  #quietTicks: number;
  #ticks = 0;

  #votes = new Map<ServerId, boolean>();
  #progress = new Map<ServerId, Progress>();
  #leadTransferee: ServerId = "";
  #leadTransferElapsed = 0;
  /**
   * Set once this leader sent TimeoutNow in its term: the target's election
   * skips the voters' leader stickiness, so our lease no longer holds.
   */
  #leaseRevoked = false;
  /** Seq of the Ready whose persistence makes this lone voter's self-election safe, or 0. */
  #selfElectionSeq = 0;

  #configs: ConfigRecord[] = [];
  #snapshot: SnapshotMeta | undefined;
  #pendingInstall: SnapshotMeta | undefined;

  #readOnly = new ReadOnlyQueue();
  #pendingReads: Array<{ id: number; lease: boolean }> = [];
  #readRoundPending = false;
  /**
   * The last heartbeat round sent for reads. Until a quorum acknowledged it,
   * later reads wait and share the next round (as etcd's server does): at
   * most one read round is in flight, so under load every round serves
   * every read that arrived meanwhile, and a round costs 2 messages per
   * follower whatever the number of reads.
   */
  #readRoundSent = 0;
  #hbRound = 0;
  #roundSentTick: number[] = new Array(ROUND_RING).fill(-Infinity);
  #selfAckedRound = 0;
  #ackedRound = new Map<ServerId, number>();
  /**
   * Leader only: servers the latest configuration removed, by the index of
   * the entry that removed them. Their Progress stays (never counted in a
   * quorum) until they acknowledged a heartbeat telling them that entry is
   * committed, so they learn of their removal instead of campaigning forever
   * (hashicorp/raft replicates to a removed server up to its removal too).
   */
  #departing = new Map<ServerId, Departure>();

  #messages: Message[] = [];
  #held: HeldMessage[] = [];
  #readStates: ReadState[] = [];
  #droppedReads: number[] = [];

  #loadSeq = 0;
  #loadRequests: LogLoad[] = [];
  #loadsInFlight = new Map<number, LoadInFlight>();
  /** Id of the load of committed entries in flight, or 0. */
  #applyLoadId = 0;
  /** A failed load of committed entries is asked again from this tick on. */
  #applyLoadRetryTick = 0;
  /** Committed entries read from storage, handed out by the next Ready. */
  #loadedCommitted: Entry[] | undefined;
  /** Handed out for application and not yet reported applied: [last index, bytes] pairs. */
  #applyInFlight: number[] = [];
  #applyInFlightHead = 0;
  #applyInFlightBytes = 0;

  #readySeq = 0;
  #ackedSeq = 0;
  #lastDirtySeq = 0;
  /** Seq of the newest Ready that carried a term or vote change. */
  #termSyncSeq = 0;
  #termVoteDirty = false;
  #lastHardState: HardState;
  #lastSoft: SoftState;

  /** Creates the state machine from what storage holds. */
  constructor(options: CoreOptions, initial: CoreInitialState) {
    this.#opts = { ...options };
    this.id = options.id;
    const snap = initial.snapshot;
    this.#snapshot = snap;
    const stored = initial.log ?? summarize(initial.entries ?? []);
    let prevIndex = snap?.index ?? 0;
    let prevTerm = snap?.term ?? 0;
    let useStored = stored.lastIndex > 0;
    if (useStored) {
      const first = stored.firstIndex;
      const lastStored = stored.lastIndex;
      if (snap && lastStored <= snap.index) {
        // The snapshot is newer than the whole log (a follower that installed one).
        useStored = false;
      } else if (snap && first > snap.index + 1) {
        throw new RangeError(
          `stored log starts at ${first}, leaving a gap after the snapshot at ${snap.index}`,
        );
      } else if (!snap && first !== 1) {
        throw new RangeError(
          `stored log starts at ${first} but no snapshot covers the entries before it`,
        );
      } else if (first === 1) {
        prevIndex = 0;
        prevTerm = 0;
      } else if (snap && first === snap.index + 1) {
        // The snapshot is exactly the compaction point.
      } else {
        // Trailing entries kept behind the snapshot: the term before the first
        // is unknown, so the first entry becomes the compaction point.
        prevIndex = first;
        prevTerm = stored.terms[0].term;
      }
    }
    this.#log = new RaftLog(prevIndex, prevTerm, options.maxCacheBytes ?? Infinity);
    if (useStored) this.#log.loadStored(stored.terms, stored.lastIndex, stored.tail);
    const last = this.#log.lastIndex();
    // The FSM was restored from the snapshot: entries up to it are applied.
    const applied = Math.max(snap?.index ?? 0, prevIndex);
    this.#log.applied = applied;
    const hs = initial.hardState;
    this.#term = hs?.term ?? 0;
    this.#vote = hs?.vote ?? "";
    if (this.#log.lastTerm() > this.#term) {
      // A crash between appending a Ready's entries and writing its hard
      // state leaves entries of a term the stored term never reached. Raft
      // needs the term to be at least every term in the log, or this node
      // could lead that term a second time and write a different entry at an
      // (index, term) it already handed out. It may have led that term (a
      // single voter elects itself at once): vote for nobody else in it.
      this.#term = this.#log.lastTerm();
      this.#vote = this.id;
      this.#termVoteDirty = true;
    }
    // Fast restart: entries known committed are applied without waiting for a leader.
    this.#log.committed = Math.max(applied, Math.min(hs?.commit ?? 0, last));

    if (snap) {
      this.#configs.push({ index: snap.configurationIndex, configuration: snap.configuration });
    }
    if (useStored) {
      for (const c of stored.configurations) {
        if (c.index > prevIndex && c.index > (snap?.configurationIndex ?? 0)) this.#configs.push(c);
      }
    }
    this.#quietTicks = options.electionTicks;
    // What the disk holds: a term restored from the log above differs, so the
    // first Ready writes it.
    this.#lastHardState = {
      term: hs?.term ?? 0,
      vote: hs?.vote ?? "",
      commit: this.#log.committed,
    };
    this.#lastSoft = { state: "follower", leader: "", term: this.#term };
    this.#resetRandomizedElectionTimeout();
  }

  // ---------------------------------------------------------------- accessors

  /** Current term. */
  get term(): number {
    return this.#term;
  }

  /** Vote cast in the current term, or "". */
  get vote(): ServerId {
    return this.#vote;
  }

  /** Role as reported publicly (a pre-candidate is a candidate). */
  get state(): Exclude<RaftState, "shutdown"> {
    return this.#state === "precandidate" ? "candidate" : this.#state;
  }

  /** Whether the node is running a pre-vote. */
  get isPreCandidate(): boolean {
    return this.#state === "precandidate";
  }

  /** Current leader id, or "". */
  get leader(): ServerId {
    return this.#leader;
  }

  /** Last log index. */
  get lastIndex(): number {
    return this.#log.lastIndex();
  }

  /** Term of the last entry. */
  get lastTerm(): number {
    return this.#log.lastTerm();
  }

  /** Commit index. */
  get commitIndex(): number {
    return this.#log.committed;
  }

  /** Highest index handed out for application. */
  get appliedIndex(): number {
    return this.#log.applied;
  }

  /** Highest index durable locally. */
  get stableIndex(): number {
    return this.#log.stableIndex;
  }

  /** First index of the log: the term of every entry from here on is known. */
  get firstIndex(): number {
    return this.#log.firstIndex();
  }

  /** First index whose entry is held in memory (older ones are read from storage when needed). */
  get firstIndexInMemory(): number {
    return this.#log.firstInMemory();
  }

  /**
   * What the log holds in memory: entries and their bytes (as the cache
   * counts them), term runs, and reads of older entries in flight.
   */
  memoryUse(): { entries: number; bytes: number; termRuns: number; loads: number } {
    return {
      entries: this.#log.heldEntries,
      bytes: this.#log.heldBytes,
      termRuns: this.#log.termRuns,
      loads: this.#loadsInFlight.size,
    };
  }

  /** Newest snapshot known locally. */
  get snapshotMeta(): SnapshotMeta | undefined {
    return this.#snapshot;
  }

  /**
   * A leader's snapshot this follower accepted to install, until the next
   * Ready carries it. The driver stores a received snapshot as its own only
   * once the core has accepted it.
   */
  get pendingSnapshot(): SnapshotMeta | undefined {
    return this.#pendingInstall;
  }

  /** Ticks since the core started. */
  get ticks(): number {
    return this.#ticks;
  }

  /** Target of an ongoing leadership transfer, or "". */
  get leadTransferee(): ServerId {
    return this.#leadTransferee;
  }

  /** Latest configuration (in effect as soon as appended) and its index. */
  latestConfiguration(): { index: number; configuration: Configuration } {
    const c = this.#configs[this.#configs.length - 1];
    return c
      ? { index: c.index, configuration: cloneConfiguration(c.configuration) }
      : { index: 0, configuration: { servers: [] } };
  }

  /** Latest committed configuration and its index. */
  committedConfiguration(): { index: number; configuration: Configuration } {
    for (let i = this.#configs.length - 1; i >= 0; i--) {
      const c = this.#configs[i];
      if (c.index <= this.#log.committed) {
        return { index: c.index, configuration: cloneConfiguration(c.configuration) };
      }
    }
    return { index: 0, configuration: { servers: [] } };
  }

  /** Configuration as of log `index` (for a snapshot taken there). */
  configurationAt(index: number): { index: number; configuration: Configuration } {
    for (let i = this.#configs.length - 1; i >= 0; i--) {
      const c = this.#configs[i];
      if (c.index <= index) {
        return { index: c.index, configuration: cloneConfiguration(c.configuration) };
      }
    }
    return { index: 0, configuration: { servers: [] } };
  }

  /** Term of the entry at `index`, if known. */
  termAt(index: number): number | undefined {
    if (this.#snapshot && index === this.#snapshot.index) return this.#snapshot.term;
    return this.#log.term(index);
  }

  /** The entry at `index` if held in memory. */
  entryAt(index: number): Entry | undefined {
    return this.#log.entry(index);
  }

  /** Replication progress per follower (leader only), for stats. */
  progress(): ReadonlyMap<ServerId, Readonly<Progress>> {
    return this.#progress;
  }

  /** Ticks since the leader was last heard from (followers) or since the last quorum check (leader). */
  get electionElapsed(): number {
    return this.#electionElapsed;
  }

  /** Whether the leader has committed an entry of its own term (needed for reads and membership changes). */
  committedInCurrentTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  /** Change timing settings at run time. */
  reconfigure(
    changes: Partial<
      Pick<CoreOptions, "electionTicks" | "heartbeatTicks" | "leaseTicks" | "autoPromoteNonvoters">
    >,
  ): void {
    Object.assign(this.#opts, changes);
    this.#resetRandomizedElectionTimeout();
  }

  // ------------------------------------------------------------------ inputs

  /**
   * Write the initial configuration of a new cluster as entry 1 (term 1).
   * Only allowed on a node with no log, no snapshot and term 0.
   */
  bootstrap(configuration: Configuration): void {
    if (this.#term !== 0 || this.#log.lastIndex() !== 0 || this.#snapshot) {
      throw new InvalidStateError(
        `cannot bootstrap: node already has state (term ${this.#term}, last index ${this.#log.lastIndex()})`,
      );
    }
    if (!configuration.servers.some((s) => s.suffrage === "voter")) {
      throw new ConfigurationError("bootstrap configuration must contain at least one voter");
    }
    // Without itself the node would wait forever for a leader nobody can become.
    try {
      checkStartingConfiguration(configuration, this.id);
    } catch (e) {
      throw new ConfigurationError(`bootstrap: ${(e as Error).message}`);
    }
    this.#term = 1;
    this.#termVoteDirty = true;
    this.#appendLocal([{
      index: 1,
      term: 1,
      type: EntryType.Configuration,
      data: encodeConfiguration(configuration),
    }]);
  }

  /** Advance logical time by one tick. */
  tick(): void {
    this.#ticks++;
    if (this.#quietTicks > 0) this.#quietTicks--;
    if (this.#loadsInFlight.size > 0) this.#expireLoads();
    if (this.#state === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /**
   * Propose entries; returns the index of the first and the term. Throws
   * {@linkcode NotLeaderError} when not the leader, and
   * {@linkcode LeadershipTransferError} while a transfer is in progress.
   */
  propose(data: Uint8Array[], type: EntryType = EntryType.Normal): { index: number; term: number } {
    this.#checkProposable(data.length);
    const first = this.#log.lastIndex() + 1;
    const term = this.#term;
    const entries: Entry[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      entries[i] = { index: first + i, term, type, data: data[i] };
    }
    this.#appendLocal(entries);
    return { index: first, term };
  }

  /**
   * Propose a membership change. `prevIndex`, when non-zero, must equal the
   * latest configuration's index (optimistic concurrency, as in hashicorp/raft).
   */
  proposeConfigurationChange(
    change: ConfigurationChange,
    prevIndex = 0,
  ): { index: number; term: number } {
    this.#checkProposable();
    const latest = this.latestConfiguration();
    if (latest.index > this.#log.committed) {
      throw new ConfigurationError(
        `a configuration change is in progress (index ${latest.index} not committed yet, commit index ${this.#log.committed})`,
      );
    }
    if (!this.committedInCurrentTerm()) {
      throw new ConfigurationError(
        "the leader has not committed an entry in its term yet; retry shortly",
      );
    }
    if (prevIndex !== 0 && prevIndex !== latest.index) {
      throw new ConfigurationError(
        `configuration changed since prevIndex ${prevIndex}: latest configuration index is ${latest.index}`,
      );
    }
    let next: Configuration;
    try {
      next = applyChange(latest.configuration, change);
    } catch (e) {
      throw new ConfigurationError((e as Error).message);
    }
    const index = this.#log.lastIndex() + 1;
    this.#appendLocal([{
      index,
      term: this.#term,
      type: EntryType.Configuration,
      data: encodeConfiguration(next),
    }]);
    return { index, term: this.#term };
  }

  /**
   * Ask for a linearizable read point for request `id`. The answer arrives
   * as a {@linkcode ReadState} in a later Ready (or in `droppedReads`).
   * With `lease`, a leader whose lease is valid answers without a round trip.
   */
  readIndex(id: number, lease = false): void {
    if (this.#state !== "leader") throw this.#notLeader();
    if (!this.committedInCurrentTerm()) {
      this.#pendingReads.push({ id, lease });
      return;
    }
    this.#serveRead(id, lease);
  }

  /**
   * The read point a read may be served at right now without a round trip,
   * or `undefined` when it needs a ReadIndex (see {@linkcode RaftCore.readIndex}):
   * the commit index of a leader that has committed in its term and is the
   * only voter, or whose lease holds by ticks (with `leaseRound`, the
   * heartbeat round the lease rests on, for the driver to judge on its clock
   * when it serves the read). Changes nothing: reads served from a lease
   * need no Ready.
   */
  leaseReadPoint(): Omit<ReadState, "id"> | undefined {
    if (this.#state !== "leader" || !this.committedInCurrentTerm()) return undefined;
    const voters = voterIds(this.latestConfiguration().configuration);
    if (voters.length === 1 && voters[0] === this.id) return { index: this.#log.committed };
    if (!this.#opts.checkQuorum || !this.#leaseValid()) return undefined;
    const leaseRound = this.#quorumAckedRound();
    return leaseRound > 0 ? { index: this.#log.committed, leaseRound } : undefined;
  }

  /**
   * Start a leadership transfer to `target` (or the most up-to-date voter).
   * The leader refuses proposals until the transfer ends or times out
   * (an election timeout).
   */
  transferLeadership(target?: ServerId): ServerId {
    if (this.#state !== "leader") throw this.#notLeader();
    const config = this.latestConfiguration().configuration;
    let to = target;
    if (to === undefined || to === "") {
      let best: Progress | undefined;
      for (const id of voterIds(config)) {
        const pr = this.#progress.get(id);
        if (pr && (!best || pr.match > best.match)) best = pr;
      }
      if (!best) throw new LeadershipTransferError("no other voter to transfer leadership to");
      to = best.id;
    }
    if (to === this.id) throw new LeadershipTransferError(`${to} is already the leader`);
    if (!isVoter(config, to)) {
      throw new LeadershipTransferError(
        `cannot transfer leadership to ${to}: not a voter in the configuration`,
      );
    }
    this.#leadTransferee = to;
    this.#leadTransferElapsed = 0;
    const pr = this.#progress.get(to)!;
    if (pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(to);
    else this.#sendAppend(pr, true);
    return to;
  }

  /** A snapshot send to `to` finished (`ok`) or failed. */
  reportSnapshot(to: ServerId, ok: boolean): void {
    const pr = this.#progress.get(to);
    if (!pr || pr.state !== "snapshot" || this.#state !== "leader") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before sending again.
    pr.probeSent = true;
  }

  /** A message to `to` could not be delivered: stop pipelining until it answers. */
  reportUnreachable(to: ServerId): void {
    const pr = this.#progress.get(to);
    if (pr && pr.state === "replicate") pr.becomeProbe();
  }

  /**
   * The answer to {@linkcode LogLoad} `id`: the entries read from storage
   * from its `lo` on (fewer than asked, or none when the read failed). They
   * are checked against the log as it is now (a truncation, compaction or
   * snapshot since the request makes them stale) and used only if still
   * wanted: sent to followers still waiting for them, or handed out for
   * application in the next Ready.
   */
  loaded(id: number, entries: readonly Entry[]): void {
    const load = this.#loadsInFlight.get(id);
    if (load === undefined) return; // forgotten: leadership changed or it timed out
    this.#loadsInFlight.delete(id);
    const log = this.#log;
    let n = Math.min(log.matchingPrefix(load.lo, entries), load.hi - load.lo + 1);
    if (load.apply) {
      this.#applyLoadId = 0;
      n = Math.min(n, log.committed - load.lo + 1);
      if (n > 0 && load.lo === log.applied + 1) {
        this.#loadedCommitted = entries.slice(0, n);
      } else if (n <= 0) {
        // Nothing usable (a failed read, or the log moved): ask again next tick.
        this.#applyLoadRetryTick = this.#ticks + 1;
      }
      return;
    }
    if (this.#state !== "leader") return;
    for (const pr of this.#progress.values()) {
      if (pr.loadId !== id) continue;
      pr.loadId = 0;
      if (pr.state !== "replicate") continue;
      if (n === 0) {
        // The read failed or the log moved under it: probe again once the
        // follower answers a heartbeat, rather than retrying at once.
        pr.becomeProbe();
        pr.probeSent = true;
        continue;
      }
      if (pr.next !== load.lo || pr.isPaused()) continue;
      this.#sendEntries(pr, entries.slice(0, n));
    }
  }

  /**
   * The FSM applied everything up to `index`: committed entries handed out
   * up to it no longer count against `maxApplyBytes`. Returns whether more
   * may now be handed out (the next Ready has work).
   */
  appliedTo(index: number): boolean {
    const pairs = this.#applyInFlight;
    let freed = false;
    while (this.#applyInFlightHead < pairs.length && pairs[this.#applyInFlightHead] <= index) {
      this.#applyInFlightBytes -= pairs[this.#applyInFlightHead + 1];
      this.#applyInFlightHead += 2;
      freed = true;
    }
    if (this.#applyInFlightHead === pairs.length) {
      pairs.length = 0;
      this.#applyInFlightHead = 0;
    }
    return freed && this.#log.hasCommitted();
  }

  /** The driver took a local snapshot (or installed one): remember it for followers. */
  snapshotTaken(meta: SnapshotMeta): void {
    if (!this.#snapshot || meta.index > this.#snapshot.index) this.#snapshot = meta;
  }

  /**
   * Forget in-memory entries up to `index` (the driver compacted storage).
   * Entries not yet applied or persisted are always kept.
   */
  compact(index: number): void {
    if (this.#snapshot === undefined || index > this.#snapshot.index) {
      throw new RangeError(`cannot compact to ${index}: no snapshot covers it`);
    }
    this.#log.compact(index);
    // Keep the configuration in force at the compaction point.
    while (this.#configs.length > 1 && this.#configs[1].index <= this.#log.prevIndex()) {
      this.#configs.shift();
    }
  }

  /**
   * Highest index the log may be compacted to without forcing a follower
   * that is receiving a snapshot into another snapshot (hashicorp/raft #697).
   */
  compactionFloor(): number {
    let floor = Infinity;
    if (this.#state === "leader") {
      for (const pr of this.#progress.values()) {
        if (pr.state === "snapshot") floor = Math.min(floor, pr.pendingSnapshot);
      }
    }
    return floor;
  }

  /** Process one incoming message. Malformed or stale messages are ignored. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    // A term this far ahead is forged (or corrupt): adopting it could leave
    // this node at a term no election can move past.
    if (m.term > this.#term && !mayAdoptTerm(this.#term, m.term)) return;
    if (m.term > this.#term) {
      if (m.type === "vote") {
        const inLease = this.#opts.checkQuorum && this.#leader !== "" &&
          this.#electionElapsed < this.#opts.electionTicks;
        if (!m.leadershipTransfer && (inLease || this.#quietTicks > 0)) return;
      }
      if (m.type === "vote" && m.preVote) {
        // A pre-vote never changes our term.
      } else if (m.type === "vote_resp" && m.preVote && m.granted) {
        // Granted pre-votes carry the future term; the term changes only on the real election.
      } else if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        this.#becomeFollower(m.term, m.from);
      } else if (m.type === "vote") {
        // The newer term is ours now, but only a granted vote restarts the
        // election timer (Raft, Figure 2): candidates whose logs are too old
        // to win, campaigning in turn, must not keep the servers that could
        // win from ever timing out (without pre-vote they did, for minutes).
        const elapsed = this.#electionElapsed;
        const timeout = this.#randomizedElectionTimeout;
        this.#becomeFollower(m.term, "");
        this.#electionElapsed = elapsed;
        this.#randomizedElectionTimeout = timeout;
      } else {
        this.#becomeFollower(m.term, "");
      }
    } else if (m.term < this.#term) {
      if (m.type === "append" || m.type === "heartbeat") {
        // Tell a stale leader about the newer term (Raft §5.1, as
        // hashicorp/raft does), or it may never learn of it: our pre-votes
        // fail against its followers, and a server whose older configuration
        // leaves the leader's voters out (a staging server or non-voter of
        // the leader) never sends them a vote request at all. Etcd answers
        // only with check-quorum or pre-vote, counting on our vote requests.
        this.#send(
          {
            type: "append_resp",
            term: this.#term,
            from: this.id,
            to: m.from,
            success: false,
            index: 0,
            hintIndex: 0,
            hintTerm: 0,
          },
          false,
        );
      } else if (m.type === "vote" && m.preVote) {
        this.#send(
          {
            type: "vote_resp",
            term: this.#term,
            from: this.id,
            to: m.from,
            granted: false,
            preVote: true,
          },
          false,
        );
      }
      return;
    }

    if (m.type === "vote") {
      this.#handleVote(m);
      return;
    }
    switch (this.#state) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "precandidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
    }
  }

  // ------------------------------------------------------------------ output

  /** Whether a Ready has something in it. */
  hasReady(): boolean {
    this.#prepare();
    return this.#messages.length > 0 || this.#log.hasUnstable() || this.#hasCommittedToHandOut() ||
      this.#loadRequests.length > 0 ||
      this.#readStates.length > 0 || this.#droppedReads.length > 0 ||
      this.#pendingInstall !== undefined ||
      this.#termVoteDirty || this.#hardStateChanged() || this.#softStateChanged();
  }

  /** Take the next batch of work. See {@linkcode Ready}. */
  ready(): Ready {
    this.#prepare();
    const seq = ++this.#readySeq;
    const entries = this.#log.takeUnstable();
    const snapshot = this.#pendingInstall;
    this.#pendingInstall = undefined;
    const mustSync = this.#termVoteDirty || entries.length > 0 || snapshot !== undefined;
    if (mustSync) this.#lastDirtySeq = seq;
    if (this.#termVoteDirty) this.#termSyncSeq = seq;
    this.#termVoteDirty = false;
    const rd: Ready = {
      seq,
      mustSync,
      entries,
      committed: this.#takeCommitted(),
      loads: this.#loadRequests,
      messages: this.#messages,
      readStates: this.#readStates,
      droppedReads: this.#droppedReads,
    };
    if (snapshot) rd.snapshot = snapshot;
    if (this.#hardStateChanged()) {
      this.#lastHardState = { term: this.#term, vote: this.#vote, commit: this.#log.committed };
      rd.hardState = { ...this.#lastHardState };
    }
    if (this.#softStateChanged()) {
      this.#lastSoft = { state: this.state, leader: this.#leader, term: this.#term };
      rd.softState = { ...this.#lastSoft };
    }
    this.#messages = [];
    this.#loadRequests = [];
    this.#readStates = [];
    this.#droppedReads = [];
    return rd;
  }

  /** Everything in `rd` (and in every earlier Ready) is durable. */
  advance(rd: Ready): void {
    if (rd.seq > this.#ackedSeq) this.#ackedSeq = rd.seq;
    if (
      this.#selfElectionSeq > 0 && this.#state === "candidate" &&
      this.#ackedSeq >= this.#selfElectionSeq
    ) {
      this.#selfElectionSeq = 0;
      this.#becomeLeader();
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      this.#log.stableTo(last.index, last.term);
    }
    if (this.#held.length > 0) {
      let kept = 0;
      for (const h of this.#held) {
        if (h.seq <= this.#ackedSeq) this.#messages.push(h.message);
        else this.#held[kept++] = h;
      }
      this.#held.length = kept;
    }
    if (this.#state === "leader" && rd.entries.length > 0) this.#maybeCommit();
  }

  // --------------------------------------------------------------- internals

  #notLeader(): NotLeaderError {
    const server = this.latestConfiguration().configuration.servers.find((s) =>
      s.id === this.#leader
    );
    return new NotLeaderError(
      this.#leader ? { id: this.#leader, address: server?.address ?? "" } : undefined,
    );
  }

  #checkProposable(count = 1): void {
    if (this.#state !== "leader") throw this.#notLeader();
    if (this.#log.lastIndex() + count > MAX_INDEX) {
      throw new RangeError(
        `the log is full: ${count} more entries would pass index ${MAX_INDEX} (last index ${this.#log.lastIndex()})`,
      );
    }
    if (this.#leadTransferee !== "") {
      throw new LeadershipTransferError(
        `leadership transfer to ${this.#leadTransferee} in progress; proposals are refused until it ends`,
      );
    }
  }

  #hardStateChanged(): boolean {
    const h = this.#lastHardState;
    return h.term !== this.#term || h.vote !== this.#vote || h.commit !== this.#log.committed;
  }

  #softStateChanged(): boolean {
    const s = this.#lastSoft;
    return s.state !== this.state || s.leader !== this.#leader || s.term !== this.#term;
  }

  #prepare(): void {
    this.#prepareLeaderMessages();
    this.#prepareApplyLoad();
  }

  /** Bytes of committed entries that may still be handed out before the FSM reports progress. */
  #applyRoom(): number {
    return (this.#opts.maxApplyBytes ?? Infinity) - this.#applyInFlightBytes;
  }

  #hasCommittedToHandOut(): boolean {
    const log = this.#log;
    if (!log.hasCommitted()) return false;
    const next = this.#loadedCommitted?.[0] ?? log.entry(log.applied + 1);
    if (next === undefined) return false;
    // With nothing in flight one entry goes out whatever its size.
    return this.#applyInFlightBytes === 0 || entryBytes(next) <= this.#applyRoom();
  }

  /** The next committed entries are only in storage: ask for them (one read at a time). */
  #prepareApplyLoad(): void {
    const log = this.#log;
    if (!log.hasCommitted() || log.nextCommittedInMemory()) return;
    if (this.#loadedCommitted !== undefined || this.#applyLoadId !== 0) return;
    if (this.#ticks < this.#applyLoadRetryTick) return;
    const room = this.#applyRoom();
    if (room <= 0) return;
    const lo = log.applied + 1;
    // One read may feed several Readies' batches (what is left waits in memory).
    const count = Math.max(this.#opts.maxApplyBatch, this.#opts.maxAppendEntries);
    const hi = Math.min(log.committed, log.firstInMemory() - 1, lo + count - 1);
    this.#applyLoadId = this.#newLoad(lo, hi, Math.min(room, this.#opts.maxAppendBytes), true);
  }

  /** Committed entries for the next Ready: read back from storage, or from memory. */
  #takeCommitted(): Entry[] {
    const log = this.#log;
    const loaded = this.#loadedCommitted;
    if (loaded !== undefined && loaded[0].index !== log.applied + 1) {
      this.#loadedCommitted = undefined; // a snapshot moved the applied index meanwhile
    }
    if (!this.#hasCommittedToHandOut()) return [];
    const room = this.#applyRoom();
    let out: Entry[];
    if (this.#loadedCommitted !== undefined) {
      const from = this.#loadedCommitted;
      let n = 0;
      let bytes = 0;
      const max = Math.min(from.length, this.#opts.maxApplyBatch);
      while (n < max) {
        bytes += entryBytes(from[n]);
        if (n > 0 && bytes > room) break;
        n++;
      }
      out = n === from.length ? from : from.slice(0, n);
      this.#loadedCommitted = n === from.length ? undefined : from.slice(n);
      log.handedOut(out[out.length - 1].index);
    } else {
      out = log.takeCommitted(this.#opts.maxApplyBatch, room);
    }
    if (out.length > 0 && room !== Infinity) {
      let bytes = 0;
      for (let k = 0; k < out.length; k++) bytes += entryBytes(out[k]);
      this.#applyInFlight.push(out[out.length - 1].index, bytes);
      this.#applyInFlightBytes += bytes;
    }
    return out;
  }

  /** Turn pending proposals, commit updates and read rounds into messages (batched per Ready). */
  #prepareLeaderMessages(): void {
    if (this.#state !== "leader") return;
    if (this.#readRoundPending) {
      if (this.#readOnly.lastRound() <= this.#hbRound) {
        this.#readRoundPending = false; // a tick's round since has them covered
      } else if (this.#quorumAckedRound() >= this.#readRoundSent) {
        this.#readRoundPending = false;
        this.#broadcastHeartbeat();
        this.#readRoundSent = this.#hbRound;
      }
    }
    this.#flushAppends();
  }

  /** Queue a message; `needsPersist` holds it until the state it reflects is durable. */
  #send(message: Message, needsPersist: boolean): void {
    if (!needsPersist) {
      this.#messages.push(message);
      return;
    }
    const dirtyNow = this.#termVoteDirty || this.#log.hasUnstable() ||
      this.#pendingInstall !== undefined;
    const seq = dirtyNow ? this.#readySeq + 1 : this.#lastDirtySeq;
    if (seq <= this.#ackedSeq) this.#messages.push(message);
    else this.#held.push({ seq, message });
  }

  #resetRandomizedElectionTimeout(): void {
    const n = this.#opts.electionTicks;
    this.#randomizedElectionTimeout = n + Math.floor(this.#opts.random() * n);
  }

  #reset(term: number): void {
    this.#selfElectionSeq = 0;
    this.#log.keepApplied = false;
    this.#forgetReplicationLoads();
    if (this.#term !== term) {
      this.#term = term;
      this.#vote = "";
      this.#termVoteDirty = true;
    }
    this.#leader = "";
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.#votes.clear();
    this.#progress.clear();
    this.#ackedRound.clear();
    this.#departing.clear();
    this.#leadTransferee = "";
    for (const id of this.#readOnly.clear()) this.#droppedReads.push(id);
    for (const r of this.#pendingReads) this.#droppedReads.push(r.id);
    this.#pendingReads = [];
    this.#readRoundPending = false;
    this.#readRoundSent = 0;
  }

  /** Followers' reads of older entries no longer matter (their progress is gone). */
  #forgetReplicationLoads(): void {
    for (const [id, load] of this.#loadsInFlight) {
      if (!load.apply) this.#loadsInFlight.delete(id);
    }
  }

  #becomeFollower(term: number, leader: ServerId): void {
    this.#reset(term);
    this.#state = "follower";
    this.#leader = leader;
  }

  /**
   * The only voter elects itself without asking anyone, so nothing else
   * waits for its vote to be durable: it becomes leader only once the Ready
   * carrying its term and self-vote is persisted. Leading earlier, a crash
   * could make it forget that vote and grant it to another candidate of the
   * same term (two leaders in one term), or lead the same term again and write
   * different entries under one (index, term). With several voters the vote
   * requests already wait for that Ready, so every leader's term is durable.
   */
  #winAloneWhenDurable(): void {
    const seq = this.#termVoteDirty ? this.#readySeq + 1 : this.#termSyncSeq;
    if (seq <= this.#ackedSeq) {
      this.#becomeLeader();
    } else {
      this.#selfElectionSeq = seq;
    }
  }

  #becomePreCandidate(): void {
    // Term and vote stay: a failed pre-vote must leave no trace.
    this.#votes.clear();
    this.#progress.clear();
    this.#log.keepApplied = false;
    this.#forgetReplicationLoads();
    this.#state = "precandidate";
    this.#leader = "";
    this.#electionElapsed = 0;
    this.#resetRandomizedElectionTimeout();
  }

  #becomeCandidate(): void {
    this.#reset(this.#term + 1);
    this.#vote = this.id;
    this.#termVoteDirty = true;
    this.#state = "candidate";
  }

  #becomeLeader(): void {
    this.#reset(this.#term);
    this.#leaseRevoked = false;
    this.#state = "leader";
    this.#leader = this.id;
    // Followers may need what was applied: keep it cached for them.
    this.#log.keepApplied = true;
    const last = this.#log.lastIndex();
    for (const s of this.latestConfiguration().configuration.servers) {
      if (s.id === this.id) continue;
      const pr = new Progress(s.id, last + 1, this.#opts.maxInflight);
      pr.recentActive = true;
      this.#progress.set(s.id, pr);
    }
    // A no-op of the new term lets earlier entries commit (§5.4.2) and
    // confirms the leader can serve reads.
    this.#appendLocal([{ index: last + 1, term: this.#term, type: EntryType.Noop, data: EMPTY }]);
  }

  #promotable(): boolean {
    if (this.#pendingInstall !== undefined) return false;
    const latest = this.latestConfiguration();
    if (isVoter(latest.configuration, this.id)) return true;
    // A voter whose own removal or demotion is appended but not committed
    // must still campaign (votes are counted in the new configuration, which
    // excludes it): the remaining voters may be unable to win without it, as
    // it can hold the newest log and refuse them, while nobody else holds the
    // entry that would make them a quorum on their own.
    return latest.index > this.#log.committed &&
      isVoter(this.committedConfiguration().configuration, this.id);
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#opts.preVote ? "pre" : "real", false);
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#leadTransferee !== "") {
      this.#leadTransferElapsed++;
      if (this.#leadTransferElapsed >= this.#opts.electionTicks) this.#leadTransferee = "";
    }
    if (this.#electionElapsed >= this.#opts.electionTicks) {
      this.#electionElapsed = 0;
      if (this.#opts.checkQuorum) {
        if (!this.#quorumActive()) {
          this.#becomeFollower(this.#term, "");
          return;
        }
        for (const pr of this.#progress.values()) pr.recentActive = false;
      }
    }
    if (this.#heartbeatElapsed >= this.#opts.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
    this.#maybePromote();
    this.#dropDeparted();
  }

  /**
   * Stop sending to a removed server once it acknowledged a heartbeat that
   * carried its removal's commit (it has learned it), or long after the
   * removal committed (it stayed down or cut off: its operator takes it from there).
   */
  #dropDeparted(): void {
    const committed = this.#log.committed;
    for (const [id, d] of this.#departing) {
      const pr = this.#progress.get(id);
      if (pr === undefined || committed < d.index) continue;
      d.committedTick ??= this.#ticks;
      if (pr.match >= d.index && d.round === undefined) d.round = this.#hbRound + 1;
      const told = d.round !== undefined && (this.#ackedRound.get(id) ?? 0) >= d.round;
      const gaveUp =
        this.#ticks - d.committedTick >= DEPARTURE_TICKS_ELECTIONS * this.#opts.electionTicks;
      if (told || gaveUp) {
        this.#departing.delete(id);
        this.#progress.delete(id);
        this.#ackedRound.delete(id);
      }
    }
  }

  #quorumActive(): boolean {
    const voters = voterIds(this.latestConfiguration().configuration);
    if (voters.length === 0) return false;
    let active = 0;
    for (const id of voters) {
      if (id === this.id || this.#progress.get(id)?.recentActive) active++;
    }
    return active >= Math.floor(voters.length / 2) + 1;
  }

  #leaseValid(): boolean {
    // After a TimeoutNow a new leader can be elected at once (its voters
    // ignore our lease), however late the transfer's answer reaches us.
    if (this.#leaseRevoked) return false;
    const voters = voterIds(this.latestConfiguration().configuration);
    let fresh = 0;
    for (const id of voters) {
      if (id === this.id) fresh++;
      else {
        const pr = this.#progress.get(id);
        if (pr && this.#ticks - pr.leaseTick < this.#opts.leaseTicks) fresh++;
      }
    }
    return fresh >= Math.floor(voters.length / 2) + 1;
  }

  #campaign(kind: "pre" | "real", transfer: boolean): void {
    // At the ceiling no election is possible. Real clusters never get here,
    // and forged terms need a billion messages to (see limits.ts).
    if (this.#term >= MAX_TERM) return;
    if (kind === "pre") this.#becomePreCandidate();
    else this.#becomeCandidate();
    const voteTerm = kind === "pre" ? this.#term + 1 : this.#term;
    const voters = voterIds(this.latestConfiguration().configuration);
    this.#votes.set(this.id, true);
    if (this.#tally().granted >= Math.floor(voters.length / 2) + 1) {
      if (kind === "pre") this.#campaign("real", transfer);
      else this.#winAloneWhenDurable();
      return;
    }
    const lastLogIndex = this.#log.lastIndex();
    const lastLogTerm = this.#log.lastTerm();
    for (const id of voters) {
      if (id === this.id) continue;
      const m: VoteRequest = {
        type: "vote",
        term: voteTerm,
        from: this.id,
        to: id,
        lastLogIndex,
        lastLogTerm,
        preVote: kind === "pre",
        leadershipTransfer: transfer,
      };
      this.#send(m, true);
    }
  }

  #tally(): { granted: number; rejected: number } {
    const voters = voterIds(this.latestConfiguration().configuration);
    let granted = 0;
    let rejected = 0;
    for (const id of voters) {
      const v = this.#votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected };
  }

  #handleVote(m: VoteRequest): void {
    const canVote = this.#vote === m.from || (this.#vote === "" && this.#leader === "") ||
      (m.preVote && m.term > this.#term);
    // No refusal by membership: our configuration may be stale (we may not
    // have the entry that made the candidate a voter), and refusing a voter
    // we do not know of can leave the cluster with no electable server. A
    // removed server cannot disrupt anyway: while a leader is alive its
    // followers ignore votes (check-quorum stickiness, above); and once its
    // removal is committed, a majority of the new configuration holds that
    // entry and it does not, so no quorum of its old configuration (which
    // overlaps that majority) finds its log fresh enough, even for a pre-vote.
    if (canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      if (!m.preVote) {
        this.#electionElapsed = 0;
        this.#vote = m.from;
        this.#termVoteDirty = true;
      }
      this.#send({
        type: "vote_resp",
        term: m.term,
        from: this.id,
        to: m.from,
        granted: true,
        preVote: m.preVote,
      }, true);
    } else {
      this.#send(
        {
          type: "vote_resp",
          term: this.#term,
          from: this.id,
          to: m.from,
          granted: false,
          preVote: m.preVote,
        },
        true,
      );
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
        this.#becomeFollower(m.term, m.from);
        this.#handleAppend(m);
        break;
      case "heartbeat":
        this.#becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        break;
      case "snapshot":
        this.#becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        break;
      case "vote_resp": {
        if (m.preVote !== (this.#state === "precandidate")) return;
        this.#votes.set(m.from, m.granted);
        const { granted, rejected } = this.#tally();
        const quorum = Math.floor(voterIds(this.latestConfiguration().configuration).length / 2) +
          1;
        if (granted >= quorum) {
          if (this.#state === "precandidate") this.#campaign("real", false);
          else this.#becomeLeader();
        } else if (rejected >= quorum) {
          this.#becomeFollower(this.#term, "");
        }
        break;
      }
      default:
        break;
    }
  }

  #stepFollower(m: Message): void {
    if (
      this.#leader !== "" && m.from !== this.#leader &&
      (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot" ||
        m.type === "timeout_now")
    ) {
      // A term has one leader: a second one claiming it is lying.
      return;
    }
    switch (m.type) {
      case "append":
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleAppend(m);
        break;
      case "heartbeat":
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleHeartbeat(m);
        break;
      case "snapshot":
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleSnapshot(m);
        break;
      case "timeout_now":
        // Only the leader of this term may hand leadership over; anyone else
        // could depose it at will.
        if (m.from === this.#leader && this.#promotable()) this.#campaign("real", true);
        break;
      default:
        break;
    }
  }

  #handleAppend(m: AppendRequest): void {
    const log = this.#log;
    if (m.prevIndex < log.committed) {
      // Everything up to our commit index is settled; acknowledge it and let
      // the leader resend the rest.
      this.#send(this.#appendResp(m.from, true, log.committed), true);
      return;
    }
    if (log.matchTerm(m.prevIndex, m.prevTerm)) {
      const lastNew = m.prevIndex + m.entries.length;
      const conflict = log.findConflict(m.entries);
      if (conflict !== 0) {
        if (conflict <= log.committed) {
          throw new Error(
            `safety violation: entry ${conflict} conflicts with committed index ${log.committed}`,
          );
        }
        const skip = conflict - m.entries[0].index;
        this.#appendLocal(skip === 0 ? m.entries : m.entries.slice(skip));
      }
      log.commitTo(Math.min(m.commit, lastNew));
      this.#send(this.#appendResp(m.from, true, lastNew), true);
    } else {
      const hint = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
      this.#send(
        {
          type: "append_resp",
          term: this.#term,
          from: this.id,
          to: m.from,
          success: false,
          index: m.prevIndex,
          hintIndex: hint.index,
          hintTerm: hint.term,
        },
        true,
      );
    }
  }

  #appendResp(to: ServerId, success: boolean, index: number): Message {
    return {
      type: "append_resp",
      term: this.#term,
      from: this.id,
      to,
      success,
      index,
      hintIndex: 0,
      hintTerm: 0,
    };
  }

  #handleHeartbeat(m: HeartbeatRequest): void {
    this.#log.commitTo(Math.min(m.commit, this.#log.lastIndex()));
    this.#send({
      type: "heartbeat_resp",
      term: this.#term,
      from: this.id,
      to: m.from,
      context: m.context,
    }, true);
  }

  #handleSnapshot(m: InstallSnapshotRequest): void {
    const meta = m.meta;
    const log = this.#log;
    if (meta.index <= log.committed) {
      this.#send(this.#appendResp(m.from, true, log.committed), true);
      return;
    }
    if (log.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry: the log agrees up to it.
      log.commitTo(meta.index);
      this.#send(this.#appendResp(m.from, true, log.committed), true);
      return;
    }
    log.restore(meta.index, meta.term);
    this.#loadedCommitted = undefined;
    // restore() marks the point stable; it is durable once the driver persists the Ready.
    this.#snapshot = meta;
    this.#pendingInstall = meta;
    this.#configs = [{
      index: meta.configurationIndex,
      configuration: cloneConfiguration(meta.configuration),
    }];
    this.#send(this.#appendResp(m.from, true, meta.index), true);
  }

  /** Append entries to our log (leader proposals or follower replication). */
  #appendLocal(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first <= this.#log.lastIndex()) {
      // Truncating a suffix may drop configurations that only lived there.
      while (this.#configs.length > 0 && this.#configs[this.#configs.length - 1].index >= first) {
        this.#configs.pop();
      }
    }
    this.#log.append(entries);
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (e.type === EntryType.Configuration) {
        this.#configs.push({ index: e.index, configuration: decodeConfiguration(e.data) });
        if (this.#state === "leader") this.#syncProgress();
      }
    }
  }

  /** Keep one Progress per server of the latest configuration, and per departing one. */
  #syncProgress(): void {
    const latest = this.latestConfiguration();
    const servers = latest.configuration.servers;
    const ids = new Set(servers.map((s) => s.id));
    for (const id of this.#progress.keys()) {
      if (ids.has(id)) this.#departing.delete(id);
      else if (!this.#departing.has(id)) this.#departing.set(id, { index: latest.index });
    }
    for (const s of servers) {
      if (s.id === this.id || this.#progress.has(s.id)) continue;
      const pr = new Progress(s.id, this.#log.lastIndex(), this.#opts.maxInflight);
      pr.recentActive = true;
      this.#progress.set(s.id, pr);
    }
  }

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    if (!pr) return;
    if (m.type === "append_resp") {
      // Nobody can hold, or have rejected, an entry this leader has not
      // written: counting such a claim could commit what no quorum stores.
      if (m.index > this.#log.lastIndex()) return;
      pr.recentActive = true;
      pr.lastHeardTick = this.#ticks;
      if (!m.success) {
        // A stale-term notice (index 0) carries no replication information.
        if (m.index === 0 && m.hintIndex === 0 && m.hintTerm === 0) return;
        let nextProbe = m.hintIndex;
        if (m.hintTerm > 0) nextProbe = this.#log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
        if (pr.maybeDecrTo(m.index, nextProbe)) {
          if (pr.state === "replicate") pr.becomeProbe();
          this.#sendAppend(pr, true);
        }
        return;
      }
      const wasPaused = pr.isPaused();
      // An empty probe answered at the match index moves nothing, but it
      // proves where the logs agree: start replicating (as etcd does).
      const probeMatched = pr.state === "probe" && m.index === pr.match;
      if (pr.maybeUpdate(m.index) || probeMatched) {
        if (pr.state === "probe") pr.becomeReplicate();
        else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
        else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
        if (!this.#maybeCommit() && wasPaused) this.#sendAppend(pr, false);
        if (this.#leadTransferee === m.from && pr.match === this.#log.lastIndex()) {
          this.#sendTimeoutNow(m.from);
        }
      } else if (pr.state === "replicate") {
        pr.inflights.freeLE(m.index);
      }
      return;
    }
    if (m.type === "heartbeat_resp") {
      // An answer to a heartbeat round not sent yet would confirm reads in advance.
      if (m.context > this.#hbRound) return;
      pr.recentActive = true;
      pr.lastHeardTick = this.#ticks;
      const sent = this.#roundSentTick[m.context % ROUND_RING];
      if (m.context > this.#hbRound - ROUND_RING && sent > pr.leaseTick) pr.leaseTick = sent;
      const prev = this.#ackedRound.get(m.from) ?? 0;
      if (m.context > prev) this.#ackedRound.set(m.from, m.context);
      if (pr.state === "probe") pr.probeSent = false;
      // Appends (or their answers) can vanish without the transport noticing,
      // e.g. when the follower crashed after receiving them. A follower that
      // answers heartbeats but lags gets an append now: it either carries on
      // or is rejected, which sends the leader back to probing from its match.
      // Without this a full window of lost appends stalls the follower forever.
      if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.match < this.#log.lastIndex()) this.#sendAppend(pr, true);
      if (this.#readOnly.size > 0) this.#confirmReads();
      return;
    }
  }

  /** Highest heartbeat round of this term acknowledged by a quorum of voters (we ack our own). */
  #quorumAckedRound(): number {
    const voters = voterIds(this.latestConfiguration().configuration);
    const rounds = voters.map((id) =>
      id === this.id ? this.#hbRound : (this.#ackedRound.get(id) ?? 0)
    );
    return quorumValue(rounds);
  }

  #confirmReads(): void {
    const confirmed = this.#quorumAckedRound();
    for (const rs of this.#readOnly.confirm(confirmed)) this.#readStates.push(rs);
  }

  #serveRead(id: number, lease: boolean): void {
    const voters = voterIds(this.latestConfiguration().configuration);
    if (voters.length === 1 && voters[0] === this.id) {
      this.#readStates.push({ id, index: this.#log.committed });
      return;
    }
    if (lease && this.#opts.checkQuorum && this.#leaseValid()) {
      // Ticks say the lease holds; the driver judges it on its clock from
      // when this round was sent (ticks stop while the process is paused).
      const leaseRound = this.#quorumAckedRound();
      if (leaseRound > 0) {
        this.#readStates.push({ id, index: this.#log.committed, leaseRound });
        return;
      }
    }
    this.#readOnly.add(id, this.#log.committed, this.#hbRound + 1);
    this.#readRoundPending = true;
  }

  #broadcastHeartbeat(): void {
    this.#hbRound++;
    this.#roundSentTick[this.#hbRound % ROUND_RING] = this.#ticks;
    for (const pr of this.#progress.values()) {
      const m: HeartbeatRequest = {
        type: "heartbeat",
        term: this.#term,
        from: this.id,
        to: pr.id,
        commit: Math.min(pr.match, this.#log.committed),
        context: this.#hbRound,
      };
      this.#send(m, false);
    }
    // A quorum of one (ourselves) confirms at once.
    if (this.#readOnly.size > 0) this.#confirmReads();
  }

  #flushAppends(): void {
    for (const pr of this.#progress.values()) {
      let sent = 0;
      while (sent < this.#opts.maxInflight && this.#sendAppend(pr, false)) sent++;
      // A new commit index alone does not get a message of its own: it rides
      // on the next append or heartbeat (as in hashicorp/raft). Sending it
      // at once cost two sends and two follower round trips per commit.
    }
  }

  /** Send an append (or a snapshot) to `pr` if it is not paused. */
  #sendAppend(pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.#log.term(prevIndex);
    if (prevTerm === undefined) {
      if (prevIndex > this.#log.lastIndex()) {
        pr.next = this.#log.lastIndex() + 1;
        return this.#sendAppend(pr, sendIfEmpty);
      }
      return this.#sendSnapshot(pr);
    }
    const last = this.#log.lastIndex();
    let entries = NO_ENTRIES;
    if (pr.next <= last) {
      if (pr.next >= this.#log.firstInMemory()) {
        entries = this.#log.slice(
          pr.next,
          last + 1,
          this.#opts.maxAppendEntries,
          this.#opts.maxAppendBytes,
        );
      } else if (pr.state === "replicate") {
        // Older than the cache: read them from storage first.
        this.#requestLoad(pr);
        return false;
      } else {
        // A probe needs no entries: an empty append finds where the logs
        // agree without reading storage.
        sendIfEmpty = true;
      }
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#sendEntries(pr, entries);
    return true;
  }

  /** Send `entries` (possibly none), which follow `pr.next - 1`, to `pr`. */
  #sendEntries(pr: Progress, entries: readonly Entry[]): void {
    const prevIndex = pr.next - 1;
    const m: AppendRequest = {
      type: "append",
      term: this.#term,
      from: this.id,
      to: pr.id,
      prevIndex,
      prevTerm: this.#log.term(prevIndex)!,
      entries: entries as Entry[],
      commit: this.#log.committed,
    };
    this.#send(m, false);
    pr.sentEntries(prevIndex + entries.length, entries.length);
  }

  /** Ask the driver for the entries `pr` needs next (one read in flight per follower). */
  #requestLoad(pr: Progress): void {
    const lo = pr.next;
    const current = pr.loadId === 0 ? undefined : this.#loadsInFlight.get(pr.loadId);
    if (current !== undefined && current.lo === lo) return;
    for (const [id, load] of this.#loadsInFlight) {
      if (!load.apply && load.lo === lo) {
        pr.loadId = id; // another follower waits for the same entries
        return;
      }
    }
    const hi = Math.min(this.#log.firstInMemory() - 1, lo + this.#opts.maxAppendEntries - 1);
    pr.loadId = this.#newLoad(lo, hi, this.#opts.maxAppendBytes, false);
  }

  #newLoad(lo: number, hi: number, maxBytes: number, apply: boolean): number {
    const id = ++this.#loadSeq;
    this.#loadsInFlight.set(id, { lo, hi, tick: this.#ticks, apply });
    this.#loadRequests.push({ id, lo, hi, maxBytes });
    return id;
  }

  /** Forget loads unanswered for too long, so what they were for can be asked again. */
  #expireLoads(): void {
    const oldest = this.#ticks - LOAD_TIMEOUT_ELECTIONS * this.#opts.electionTicks;
    for (const [id, load] of this.#loadsInFlight) {
      if (load.tick > oldest) continue;
      this.#loadsInFlight.delete(id);
      if (load.apply) {
        this.#applyLoadId = 0;
        continue;
      }
      for (const pr of this.#progress.values()) if (pr.loadId === id) pr.loadId = 0;
    }
  }

  #sendSnapshot(pr: Progress): boolean {
    const snap = this.#snapshot;
    if (!snap || !pr.recentActive) return false;
    pr.becomeSnapshot(snap.index);
    this.#send({ type: "snapshot", term: this.#term, from: this.id, to: pr.id, meta: snap }, false);
    return true;
  }

  #sendTimeoutNow(to: ServerId): void {
    this.#leaseRevoked = true;
    this.#send({ type: "timeout_now", term: this.#term, from: this.id, to }, false);
  }

  /** Advance the commit index to what a quorum of voters has durably; returns whether it moved. */
  #maybeCommit(): boolean {
    const voters = voterIds(this.latestConfiguration().configuration);
    if (voters.length === 0) return false;
    const matches = voters.map((id) =>
      id === this.id ? this.#log.stableIndex : (this.#progress.get(id)?.match ?? 0)
    );
    const index = quorumValue(matches);
    // Only entries of the current term commit by counting replicas (§5.4.2).
    if (index <= this.#log.committed || this.#log.term(index) !== this.#term) return false;
    this.#log.commitTo(index);
    this.#afterCommit();
    return true;
  }

  #afterCommit(): void {
    if (this.#pendingReads.length > 0 && this.committedInCurrentTerm()) {
      const reads = this.#pendingReads;
      this.#pendingReads = [];
      for (const r of reads) this.#serveRead(r.id, r.lease);
    }
    const latest = this.latestConfiguration();
    if (latest.index <= this.#log.committed && !isVoter(latest.configuration, this.id)) {
      // Removed or demoted: hand over to the most up-to-date voter, then step down.
      let best: Progress | undefined;
      for (const id of voterIds(latest.configuration)) {
        const pr = this.#progress.get(id);
        if (pr && (!best || pr.match > best.match)) best = pr;
      }
      // Last words: pending entries, and the commit index (heartbeats carry
      // it), so the others learn the change is committed.
      this.#flushAppends();
      this.#broadcastHeartbeat();
      if (best && best.match === this.#log.lastIndex()) this.#sendTimeoutNow(best.id);
      this.#becomeFollower(this.#term, "");
    }
  }

  /** Promote a caught-up staging server (or non-voter with autoPromote), one at a time. */
  #maybePromote(): void {
    if (this.#leadTransferee !== "" || !this.committedInCurrentTerm()) return;
    const latest = this.latestConfiguration();
    if (latest.index > this.#log.committed) return;
    const last = this.#log.lastIndex();
    for (const s of latest.configuration.servers) {
      const wanted = s.suffrage === "staging" ||
        (s.suffrage === "nonvoter" && this.#opts.autoPromoteNonvoters);
      if (!wanted) continue;
      const pr = this.#progress.get(s.id);
      if (!pr || !pr.recentActive || pr.match === 0) continue;
      if (pr.match + this.#opts.catchupMargin >= last && pr.state === "replicate") {
        this.proposeConfigurationChange({ op: "promote", id: s.id });
        return;
      }
    }
  }
}

/** A whole stored log handed over as entries, summarized like one read in batches. */
function summarize(entries: readonly Entry[]): StoredLog {
  const builder = new StoredLogBuilder(Infinity);
  builder.add(entries);
  return builder.finish();
}

/** Election timeouts a leader keeps telling an unresponsive removed server of its removal. */
const DEPARTURE_TICKS_ELECTIONS = 100;

/** A server the leader still tells about its own removal (see `#departing`). */
interface Departure {
  /** Index of the configuration entry that removed it. */
  index: number;
  /** Tick at which the leader first saw that entry committed. */
  committedTick?: number;
  /** The first heartbeat round that tells it so (its match had reached the entry). */
  round?: number;
}
