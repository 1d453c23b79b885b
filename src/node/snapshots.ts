/**
 * Snapshots of one node: taking them (on demand, by threshold, on a timer),
 * receiving and installing the leader's, and sending ours to followers.
 * Installing ends in {@linkcode Snapshots.adoptSnapshot}: the FSM takes the
 * snapshot's state (in its queue, after the entries before it) and the
 * stored log goes. Takes and installs run one at a time. (An operator's
 * restore goes through the log, see `restore_chunks.ts`.)
 *
 * @module
 */

import type { InstallSnapshotRequest, ServerAddress, SnapshotMeta } from "../core/types.ts";
import { InvalidStateError, RaftError, ShutdownError, StorageError } from "../errors.ts";
import type { FSM, FSMSnapshot } from "../fsm.ts";
import type { SnapshotInfo, SnapshotStore } from "../storage/types.ts";
import type { Transport } from "../transport/types.ts";
import type { NodeContext } from "./context.ts";
import type { FsmRunner } from "./fsm_runner.ts";
import { checkRunning } from "./lifecycle.ts";
import type { PendingOperations } from "./pending.ts";
import type { WritePipeline } from "./write_pipeline.ts";

/** Index, term and size of the newest snapshot taken or installed here. */
export interface SnapshotSummary {
  /** Last index the snapshot covers. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Size of its state in bytes. */
  size: number;
}

/**
 * Write an FSM snapshot to `store` and release it, whatever happens.
 *
 * @example
 * ```ts
 * import { MemorySnapshotStore } from "../storage/mod.ts";
 * import { persistPrepared } from "./snapshots.ts";
 * const store = new MemorySnapshotStore();
 * const info = await persistPrepared({
 *   persist: async (sink) => await sink.write(new Uint8Array([1, 2])),
 *   release: () => {},
 * }, store, { index: 5, term: 1, configuration: { servers: [] }, configurationIndex: 1 });
 * console.log(info.size); // 2
 * ```
 */
export async function persistPrepared(
  fsmSnapshot: FSMSnapshot,
  store: SnapshotStore,
  meta: SnapshotMeta,
): Promise<SnapshotInfo> {
  try {
    const sink = await store.create(meta);
    try {
      await fsmSnapshot.persist(sink);
      return await sink.close();
    } catch (e) {
      await sink.cancel();
      throw e;
    }
  } finally {
    fsmSnapshot.release();
  }
}

/** Find the stored snapshot with `meta`'s index and term. */
async function findSnapshot(store: SnapshotStore, meta: SnapshotMeta): Promise<SnapshotInfo> {
  const info = (await store.list()).find((s) => s.index === meta.index && s.term === meta.term);
  if (!info) {
    throw new StorageError(`snapshot ${meta.term}-${meta.index} is not in the snapshot store`);
  }
  return info;
}

/** What the snapshot keeper needs of the rest of the node. */
export interface SnapshotParts<R> {
  /** The state machine. */
  fsm: FSM<R>;
  /** Where snapshots live. */
  store: SnapshotStore;
  /** How they reach followers. */
  transport: Transport;
  /** The FSM's queue. */
  runner: FsmRunner<R>;
  /** The log writer. */
  pipeline: WritePipeline;
  /** Waiting operations. */
  pending: PendingOperations;
}

/**
 * Takes, installs, sends and restores snapshots; see the module docs.
 *
 * @typeParam R What the FSM's `apply` returns.
 *
 * @example
 * ```ts
 * import type { Snapshots } from "./snapshots.ts";
 * async function compactNow(snapshots: Snapshots<unknown>) {
 *   const info = await snapshots.take();
 *   console.log(`snapshot ${info.id} at ${info.index}`);
 * }
 * ```
 */
export class Snapshots<R> {
  #node: NodeContext;
  #parts: SnapshotParts<R>;
  #lock: Promise<void> = Promise.resolve();
  #last: SnapshotSummary = { index: 0, term: 0, size: 0 };
  #taking = false;
  #installs = new Map<string, Promise<void>>();
  /** Received snapshots the core accepted, by key, until their install reads them. */
  #published = new Map<string, Promise<void>>();
  #cancelTimer: () => void = () => {};
  #taken = 0;
  #installed = 0;

  /** Snapshots of `node`. */
  constructor(node: NodeContext, parts: SnapshotParts<R>) {
    this.#node = node;
    this.#parts = parts;
  }

  /** The newest snapshot taken or installed here. */
  get last(): SnapshotSummary {
    return this.#last;
  }

  /** Snapshots taken here. */
  get taken(): number {
    return this.#taken;
  }

  /** Snapshots installed from a leader. */
  get installed(): number {
    return this.#installed;
  }

  /** Settles once the take, install or restore running now (if any) is over. */
  get settled(): Promise<void> {
    return this.#lock;
  }

  /** The node started from snapshot `last`. */
  startFrom(last: SnapshotSummary): void {
    this.#last = { ...last };
  }

  /** Run `fn` alone among snapshot takes, installs and restores. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(() => {}, () => {});
    return run;
  }

  // ----------------------------------------------------------------- take

  /** (Re)start the timer that checks the snapshot threshold on an idle node. */
  armTimer(): void {
    this.#cancelTimer();
    this.#cancelTimer = () => {};
    const interval = this.#node.config().snapshotInterval;
    if (interval <= 0) return;
    const arm = () => {
      this.#cancelTimer = this.#node.timers.after(interval, () => {
        arm();
        this.maybeAutoSnapshot();
      });
    };
    arm();
  }

  /** Stop the threshold timer. */
  stopTimer(): void {
    this.#cancelTimer();
    this.#cancelTimer = () => {};
  }

  /**
   * Checked after every apply batch; the interval timer retries a failed
   * automatic snapshot on an idle node.
   */
  maybeAutoSnapshot(): void {
    const node = this.#node;
    if (
      this.#taking || node.isShutdown() || node.failure() || this.#parts.runner.assemblingRestore
    ) return;
    const due = this.#parts.runner.appliedIndex - this.#last.index >=
      node.config().snapshotThreshold;
    if (!due) return;
    this.take().catch((e) =>
      this.#node.log.warn("automatic snapshot failed: {error}", { error: String(e) })
    );
  }

  /** Take a snapshot of the FSM at its applied index and compact the log behind it. */
  async take(): Promise<SnapshotInfo> {
    this.#taking = true;
    try {
      return await this.exclusive(() => this.#takeLocked());
    } finally {
      this.#taking = false;
    }
  }

  /**
   * A snapshot on request (`Raft.snapshot()`): refused while the node is
   * stopped, while one is being taken, or with nothing new since the last.
   */
  async takeOnRequest(): Promise<SnapshotInfo> {
    checkRunning(this.#node);
    if (this.#taking) throw new InvalidStateError("a snapshot is already being taken");
    this.checkSomethingNew();
    return await this.take();
  }

  /**
   * Throws when the FSM holds nothing newer than the newest snapshot, or an
   * operator's restore is half-way through the log (a node installing such
   * a snapshot would miss the restore's first entries).
   */
  checkSomethingNew(): void {
    if (this.#parts.runner.assemblingRestore) {
      throw new InvalidStateError(
        "a restore is being applied; take the snapshot once it completes",
      );
    }
    const applied = this.#parts.runner.appliedIndex;
    if (applied <= this.#last.index) {
      throw new InvalidStateError(
        `nothing new to snapshot: applied index ${applied} is already in the snapshot at ${this.#last.index}`,
      );
    }
  }

  async #takeLocked(): Promise<SnapshotInfo> {
    const node = this.#node;
    const { runner, store, fsm, pipeline } = this.#parts;
    if (node.failure() || node.isShutdown()) throw new ShutdownError();
    this.checkSomethingNew();
    // Capture the FSM between applies so the snapshot matches the applied index.
    const { fsmSnapshot, meta } = await runner.capture(async () => {
      this.checkSomethingNew();
      const index = runner.appliedIndex;
      const term = node.core.termAt(index);
      if (term === undefined) {
        throw new InvalidStateError(`term of applied index ${index} is unknown`);
      }
      const conf = runner.appliedConfiguration;
      const meta: SnapshotMeta = {
        index,
        term,
        configuration: conf.configuration,
        configurationIndex: conf.index,
      };
      return { fsmSnapshot: await fsm.snapshot(), meta };
    });
    const info = await persistPrepared(fsmSnapshot, store, meta);
    if (meta.index > this.#last.index) {
      this.#last = { index: meta.index, term: meta.term, size: info.size };
    }
    this.#taken++;
    node.core.snapshotTaken(meta);
    const target = Math.min(meta.index - node.config().trailingLogs, node.core.compactionFloor());
    if (target > 0) pipeline.compact(target);
    await this.#prune();
    this.#node.log.info("snapshot taken at {index} ({size} bytes)", {
      index: meta.index,
      size: info.size,
    });
    node.emit({ type: "snapshot", index: meta.index, term: meta.term, size: info.size });
    return info;
  }

  // -------------------------------------------------------------- install

  /**
   * Receive a leader's snapshot from the transport and hand it to the core.
   * The state is streamed into the store unpublished; it becomes a snapshot
   * of this node only once the core accepts it, and is dropped otherwise. A
   * snapshot for another server is refused before anything is written.
   */
  async receive(m: InstallSnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> {
    const node = this.#node;
    const core = node.core;
    if (node.isShutdown() || node.failure()) throw new ShutdownError();
    if (m.to !== node.id) {
      throw new RaftError(
        `snapshot from ${m.from} is addressed to ${JSON.stringify(m.to)}, this is ${
          JSON.stringify(node.id)
        }`,
      );
    }
    if (m.term < core.term) {
      throw new RaftError(`stale snapshot from ${m.from}: term ${m.term} < ${core.term}`);
    }
    const sink = await this.#parts.store.create(m.meta);
    let accepted = false;
    try {
      for await (const chunk of data) await sink.write(chunk);
      if (node.isShutdown() || node.failure()) throw new ShutdownError();
      try {
        core.step(m);
      } catch (e) {
        node.fail(e as Error, "installing a snapshot");
        throw e;
      }
      const pending = core.pendingSnapshot;
      accepted = pending !== undefined && snapshotKey(pending) === snapshotKey(m.meta);
    } finally {
      if (!accepted) await sink.cancel();
    }
    if (!accepted) return; // the core answered the leader; nothing of it is kept
    // The install (queued by the next Ready) waits for this before it reads
    // the snapshot. Installs queued before read theirs first: a store that
    // keeps only its newest snapshots must not drop one of theirs for this.
    const key = snapshotKey(m.meta);
    const earlier = [...this.#installs].filter(([k]) => k !== key).map(([, p]) =>
      p.catch(() => {})
    );
    const published = Promise.all(earlier).then(() => sink.close()).then(() => {});
    published.catch(() => {});
    this.#published.set(key, published);
    await published;
  }

  /**
   * The core accepted snapshot `meta` (a Ready carries it): queue the FSM's
   * restore behind the entries already committed. The write pipeline then
   * awaits {@linkcode Snapshots.install}.
   */
  queueInstall(meta: SnapshotMeta): void {
    const adopted = this.adoptSnapshot(meta, "installing a snapshot from the leader");
    // A failed restore fails the node; whoever awaits it learns it there.
    adopted.catch(() => {});
    this.#installs.set(snapshotKey(meta), adopted);
  }

  /** Resolves once the FSM holds snapshot `meta` (queued by {@linkcode Snapshots.queueInstall}). */
  async install(meta: SnapshotMeta): Promise<void> {
    const key = snapshotKey(meta);
    const restored = this.#installs.get(key) ?? Promise.reject(
      new InvalidStateError(`snapshot ${key} was never queued for installation`),
    );
    try {
      await restored;
    } finally {
      this.#installs.delete(key);
    }
  }

  /** The write pipeline installed `meta` and cleared the log. */
  noteInstalled(meta: SnapshotMeta): void {
    this.#installed++;
    void this.exclusive(() => this.#prune());
    this.#node.log.info("installed snapshot {index} from the leader ({size} bytes)", {
      index: meta.index,
      size: this.#last.size,
    });
    this.#node.emit({
      type: "snapshot",
      index: meta.index,
      term: meta.term,
      size: this.#last.size,
    });
  }

  /**
   * Make snapshot `meta` (already in the store) the FSM's state: queued in
   * the FSM runner after the entries before it, under the snapshot lock.
   * Operations on the entries it replaces end. Resolves once the FSM holds it.
   */
  adoptSnapshot(meta: SnapshotMeta, during: string): Promise<void> {
    const { store, runner, pending } = this.#parts;
    let size = 0;
    return runner.enqueueRestore(meta, {
      open: async () => {
        const node = this.#node;
        const key = snapshotKey(meta);
        const published = this.#published.get(key);
        this.#published.delete(key);
        await published;
        if (node.failure() || node.isShutdown()) throw new ShutdownError();
        const info = await findSnapshot(store, meta);
        size = info.size;
        return (await store.open(info.id)).data;
      },
      restored: () => {
        pending.supersede(meta.index);
        this.#last = { index: meta.index, term: meta.term, size };
      },
      during,
    });
  }

  /** Send our snapshot `m.meta` to a follower; tells the core how it went. */
  async send(address: ServerAddress, m: InstallSnapshotRequest): Promise<void> {
    const node = this.#node;
    let ok = false;
    try {
      const info = (await this.#parts.store.list()).find((s) =>
        s.index === m.meta.index && s.term === m.meta.term
      );
      if (!info) {
        throw new RaftError(`snapshot ${m.meta.term}-${m.meta.index} is no longer in the store`);
      }
      const source = await this.#parts.store.open(info.id);
      this.#node.log.info("sending snapshot {index} ({size} bytes) to {to}", {
        index: info.index,
        size: info.size,
        to: m.to,
      });
      await this.#parts.transport.sendSnapshot(address, m, source.data);
      ok = true;
    } catch (e) {
      this.#node.log.warn("sending snapshot to {to} failed: {error}", {
        to: m.to,
        error: String(e),
      });
    }
    if (node.isShutdown()) return;
    node.core.reportSnapshot(m.to, ok);
    node.scheduleReady();
  }

  /**
   * Keep the newest `retainSnapshots` snapshots; the store may keep fewer on
   * its own. A store without `remove()` keeps what it keeps.
   */
  async #prune(): Promise<void> {
    const store = this.#parts.store;
    if (!store.remove) return;
    const retain = this.#node.config().retainSnapshots;
    // A received snapshot the core accepted stays until the FSM holds it,
    // however many newer ones there are: its install will read it.
    const pending = new Set([...this.#installs.keys(), ...this.#published.keys()]);
    try {
      for (const old of (await store.list()).slice(retain)) {
        if (!pending.has(`${old.term}-${old.index}`)) await store.remove(old.id);
      }
    } catch (e) {
      // The new snapshot is safe; an old one left behind is only disk space.
      this.#node.log.warn("removing old snapshots failed: {error}", { error: String(e) });
    }
  }
}

function snapshotKey(meta: SnapshotMeta): string {
  return `${meta.term}-${meta.index}`;
}
