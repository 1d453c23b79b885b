/**
 * The write pipeline: persists the core's Readies in order — log entries
 * (one append and one fsync for every Ready queued meanwhile: group commit),
 * the stable store's term and vote, the lazily written commit hint — and
 * the log's compactions, then tells the core what is durable.
 *
 * The leader sends its entries before they are on its own disk (Raft thesis
 * §10.2.1): the pipeline only decides when the core may count them.
 *
 * @module
 */

import type { Ready } from "../core/raft_core.ts";
import type { Entry, HardState, SnapshotMeta } from "../core/types.ts";
import { HistogramRecorder } from "../metrics.ts";
import type { LogStore, StableStore } from "../storage/types.ts";
import type { NodeContext } from "./context.ts";
import { type Deferred, deferred } from "../deferred.ts";

/** The commit hint alone is written at most this often (ms); it only speeds up restarts. */
const COMMIT_HINT_INTERVAL_MS = 1000;

interface PersistTask {
  kind: "ready";
  ready: Ready;
}

interface CompactTask {
  kind: "compact";
  index: number;
}

type WriteTask = PersistTask | CompactTask;

/** What the pipeline asks of the rest of the node. */
export interface WritePipelineHooks {
  /** A Ready carries snapshot `meta` to install: resolves once the FSM holds it. */
  installSnapshot(meta: SnapshotMeta): Promise<void>;
  /** The snapshot of a Ready is installed and the log cleared. */
  snapshotInstalled(meta: SnapshotMeta): void;
  /** Readies up to `seq` are durable and advanced in the core. */
  persisted(seq: number): void;
}

/**
 * Persists Readies in order; see the module docs.
 *
 * @example
 * ```ts
 * import type { WritePipeline } from "./write_pipeline.ts";
 * function queueCompaction(pipeline: WritePipeline, snapshotIndex: number) {
 *   pipeline.compact(snapshotIndex); // runs after every write queued before it
 * }
 * ```
 */
export class WritePipeline {
  #node: NodeContext;
  #logStore: LogStore;
  #stableStore: StableStore;
  #hooks: WritePipelineHooks;
  #queue: WriteTask[] = [];
  #writing = false;
  /** Settles when the pipeline next has nothing running or queued. */
  #idle: Deferred<void> | undefined;
  #storedLastIndex = 0;
  #lastHardState: HardState;
  #hardStateWrittenAt = 0;
  #commitHintDirty = false;
  /** The commit hint being written in the background, if it is. */
  #hintWrite: Promise<void> | undefined;
  #fsyncs = 0;
  #storeLogsSeconds = new HistogramRecorder();

  /**
   * @param node The node.
   * @param stores Where the log and the hard state go.
   * @param hooks Snapshot installs and durability notices.
   * @param stored What the stores held at start: last log index and hard state.
   */
  constructor(
    node: NodeContext,
    stores: { logStore: LogStore; stableStore: StableStore },
    hooks: WritePipelineHooks,
    stored: { lastIndex: number; hardState: HardState | undefined },
  ) {
    this.#node = node;
    this.#logStore = stores.logStore;
    this.#stableStore = stores.stableStore;
    this.#hooks = hooks;
    this.#storedLastIndex = stored.lastIndex;
    this.#lastHardState = stored.hardState ?? { term: 0, vote: "", commit: 0 };
  }

  /** Log writes so far (each one fsync). */
  get fsyncs(): number {
    return this.#fsyncs;
  }

  /** Log append + fsync latency. */
  get storeLogsSeconds(): HistogramRecorder {
    return this.#storeLogsSeconds;
  }

  /** Whether a write is running or queued. */
  get busy(): boolean {
    return this.#writing || this.#queue.length > 0;
  }

  /** Resolves when nothing is being written or queued (the same promise until then). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    this.#idle ??= deferred<void>();
    return this.#idle.promise;
  }

  /** Queue a Ready (persisted with every other Ready queued before the next write starts). */
  push(ready: Ready): void {
    this.#queue.push({ kind: "ready", ready });
  }

  /** Queue a compaction of the log up to `index` (after the writes queued before it). */
  compact(index: number): void {
    this.#queue.push({ kind: "compact", index });
    this.kick();
  }

  /** Start writing if something is queued and no write runs. */
  kick(): void {
    if (!this.#writing && this.#queue.length > 0) void this.#writeLoop();
  }

  /**
   * At shutdown, once no write runs: store the commit index of the last
   * persisted Ready if it was only kept in memory (its entries are on disk).
   */
  async flushCommitHint(): Promise<void> {
    if (this.#hintWrite) await this.#hintWrite;
    if (this.#writing || !this.#commitHintDirty) return;
    await this.#stableStore.setState(this.#lastHardState);
    this.#commitHintDirty = false;
  }

  /** Persist queued Readies in order: group commit (one log write and one fsync per batch). */
  async #writeLoop(): Promise<void> {
    this.#writing = true;
    const core = this.#node.core;
    try {
      while (this.#queue.length > 0 && !this.#node.failure()) {
        const task = this.#queue[0];
        if (task.kind === "compact") {
          this.#queue.shift();
          await this.#compactLog(task.index);
          continue;
        }
        // Take every queued Ready up to the next compaction task.
        const batch: Ready[] = [];
        while (this.#queue.length > 0 && this.#queue[0].kind === "ready") {
          batch.push((this.#queue.shift() as PersistTask).ready);
        }
        await this.#persist(batch);
        let seq = 0;
        for (const rd of batch) {
          core.advance(rd);
          seq = rd.seq;
        }
        this.#hooks.persisted(seq);
      }
    } catch (e) {
      this.#node.fail(e as Error, "writing to storage");
    } finally {
      this.#writing = false;
      const failure = this.#node.failure();
      if (failure) this.#queue = []; // nothing queued will be written
      if (!this.busy || failure) {
        this.#idle?.resolve();
        this.#idle = undefined;
      }
    }
  }

  async #persist(batch: Ready[]): Promise<void> {
    let entries: Entry[] = [];
    let hardState: HardState | undefined;
    for (const rd of batch) {
      if (rd.snapshot) {
        // Write what came before, then install the snapshot.
        if (entries.length > 0) await this.#storeEntries(entries);
        entries = [];
        await this.#hooks.installSnapshot(rd.snapshot);
        await this.clearLog();
        this.#hooks.snapshotInstalled(rd.snapshot);
      }
      if (rd.entries.length > 0) {
        const first = rd.entries[0].index;
        if (entries.length > 0 && first <= entries[entries.length - 1].index) {
          entries = entries.slice(0, Math.max(0, first - entries[0].index));
        }
        entries = entries.length === 0 ? rd.entries : entries.concat(rd.entries);
      }
      if (rd.hardState) hardState = rd.hardState;
    }
    if (entries.length > 0) await this.#storeEntries(entries);
    if (hardState) await this.#storeHardState(hardState);
  }

  async #storeHardState(hardState: HardState): Promise<void> {
    const clock = this.#node.clock;
    const termOrVote = hardState.term !== this.#lastHardState.term ||
      hardState.vote !== this.#lastHardState.vote;
    if (termOrVote) {
      // One stable-store write at a time, in order: a hint still being
      // written must not land after the new term or vote.
      if (this.#hintWrite) await this.#hintWrite;
      await this.withStorageTimeout(this.#stableStore.setState(hardState), "stable store write");
      this.#lastHardState = hardState;
      this.#hardStateWrittenAt = clock.now();
      this.#commitHintDirty = false;
      return;
    }
    // The commit index is only a hint for fast restarts: write it lazily,
    // and off the path of this batch (a stable-store write is a temp file,
    // two fsyncs and a rename: 2–5 ms here, once a second on every node).
    this.#lastHardState = { ...this.#lastHardState, commit: hardState.commit };
    this.#commitHintDirty = true;
    if (
      this.#hintWrite === undefined &&
      clock.now() - this.#hardStateWrittenAt > COMMIT_HINT_INTERVAL_MS
    ) {
      this.#hardStateWrittenAt = clock.now();
      this.#commitHintDirty = false;
      this.#hintWrite = this.withStorageTimeout(
        this.#stableStore.setState(this.#lastHardState),
        "stable store write",
      ).catch((e) => this.#node.fail(e as Error, "writing the commit hint"))
        .finally(() => {
          this.#hintWrite = undefined;
        });
    }
  }

  async #storeEntries(entries: Entry[]): Promise<void> {
    const clock = this.#node.clock;
    const first = entries[0].index;
    const start = clock.now();
    if (first <= this.#storedLastIndex) {
      const storeFirst = await this.withStorageTimeout(this.#logStore.firstIndex(), "log read");
      await this.withStorageTimeout(
        this.#logStore.deleteRange(Math.max(first, storeFirst), this.#storedLastIndex),
        "log truncation",
      );
    }
    await this.withStorageTimeout(this.#logStore.storeLogs(entries), "log write");
    this.#storedLastIndex = entries[entries.length - 1].index;
    this.#fsyncs++;
    this.#storeLogsSeconds.observe((clock.now() - start) / 1000);
  }

  /**
   * A storage call that hangs must not freeze the cluster: past
   * `storageTimeout` a leader hands over and steps down, while the call may
   * still finish (a write cannot be taken back). Every call of the pipeline
   * goes through here.
   */
  async withStorageTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    const node = this.#node;
    const timeout = node.config().storageTimeout;
    const cancel = node.timers.after(timeout, () => {
      if (node.core.state !== "leader") {
        node.log.warn("{what} has taken more than {ms} ms", { what, ms: timeout });
        return;
      }
      node.log.error("{what} has taken more than {ms} ms; stepping down as leader", {
        what,
        ms: timeout,
      });
      try {
        node.core.transferLeadership();
        node.scheduleReady();
      } catch (e) {
        node.log.warn("could not hand over leadership: {error}", { error: String(e) });
      }
    });
    try {
      return await promise;
    } finally {
      cancel();
    }
  }

  /** Delete the whole stored log (a snapshot replaced it). */
  async clearLog(): Promise<void> {
    const store = this.#logStore;
    const last = await this.withStorageTimeout(store.lastIndex(), "log read");
    if (last > 0) {
      const first = await this.withStorageTimeout(store.firstIndex(), "log read");
      await this.withStorageTimeout(store.deleteRange(first, last), "log clearing");
    }
    this.#storedLastIndex = 0;
  }

  async #compactLog(index: number): Promise<void> {
    const core = this.#node.core;
    const first = await this.withStorageTimeout(this.#logStore.firstIndex(), "log read");
    const upTo = Math.min(index, this.#storedLastIndex, core.appliedIndex);
    if (first === 0 || upTo < first) return;
    // The core first: it must not ask to read back entries the store is deleting.
    core.compact(Math.min(upTo, core.snapshotMeta?.index ?? 0));
    await this.withStorageTimeout(this.#logStore.deleteRange(first, upTo), "log compaction");
    this.#node.log.debug("log compacted up to {index}", { index: upTo });
  }
}
