/**
 * The FSM runner: one ordered queue of everything that changes the FSM —
 * batches of committed entries and snapshot restores — in the order the core
 * produced them (hashicorp/raft's `fsmMutateCh`). A restore blocks what
 * follows it until the FSM holds the snapshot; snapshots are captured
 * between applies.
 *
 * @module
 */

import { decodeConfiguration } from "../core/membership.ts";
import { type Configuration, type Entry, EntryType, type SnapshotMeta } from "../core/types.ts";
import type { FSM, FSMEntry } from "../fsm.ts";
import type { Logger } from "../logger.ts";
import type { HistogramRecorder } from "../metrics.ts";
import type { Clock } from "../platform/clock.ts";
import { deferred } from "../deferred.ts";
import { RestoreAssembler } from "./restore_chunks.ts";

/** What the runner tells the node. */
export interface FsmRunnerHooks {
  /** The entry at `index` of `term` was applied with `response` (undefined for noop/configuration). */
  settle(index: number, term: number, response: unknown): void;
  /** The queue drained as far as it could (release reads, consider a snapshot). */
  drained(): void;
  /** Applying or restoring failed: the FSM's state is unknown, the node must stop. */
  fail(error: Error, during: string): void;
  /** Run `fn` alone among snapshot takes, installs and restores. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

interface ApplyTask {
  kind: "apply";
  entries: Entry[];
}

/** How to restore the FSM from a snapshot, and what to do once it holds it. */
export interface SnapshotRestore {
  /** The snapshot's state, opened when the queue reaches the restore. */
  open(): Promise<AsyncIterable<Uint8Array>>;
  /** Called once the FSM holds the snapshot, before anything after it is applied. */
  restored(): void;
  /** What the node was doing, for the error if the restore fails. */
  during: string;
}

interface RestoreTask extends SnapshotRestore {
  kind: "restore";
  meta: SnapshotMeta;
  done: PromiseWithResolvers<void>;
}

/** An operator's restore, complete in the log: the FSM takes `pieces` as its state at `index`. */
interface LogRestoreTask {
  kind: "logRestore";
  index: number;
  term: number;
  pieces: Uint8Array[];
}

type FsmTask = ApplyTask | RestoreTask | LogRestoreTask;

/** The index and configuration the FSM reflects. */
export interface AppliedState {
  /** Index of the last entry the FSM holds. */
  index: number;
  /** Latest configuration entry among them, and its index. */
  configuration: { index: number; configuration: Configuration };
}

/**
 * Applies committed entries and restores snapshots, in order.
 *
 * @typeParam R What the FSM's `apply` returns.
 *
 * @example
 * ```ts
 * import { RealClock } from "../platform/clock.ts";
 * import { HistogramRecorder } from "../metrics.ts";
 * import { FsmRunner } from "./fsm_runner.ts";
 * import { EntryType } from "../core/types.ts";
 * import { getLogger } from "@logtape/logtape";
 * const seen: number[] = [];
 * const runner = new FsmRunner({
 *   apply: (e) => seen.push(e.index),
 *   snapshot: () => ({ persist: async () => {}, release: () => {} }),
 *   restore: async () => {},
 * }, {
 *   settle: () => {}, drained: () => {}, fail: () => {},
 *   exclusive: (fn) => fn(),
 * }, new RealClock(), new HistogramRecorder(), getLogger(["raftd", "raft"]));
 * runner.enqueue([{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array() }]);
 * runner.drain();
 * console.log(seen, runner.appliedIndex); // [1] 1
 * ```
 */
export class FsmRunner<R> {
  #log: Logger;
  #fsm: FSM<R>;
  #hooks: FsmRunnerHooks;
  #clock: Clock;
  #applySeconds: HistogramRecorder;
  #queue: FsmTask[] = [];
  /** Captures and restores in progress: nothing else touches the FSM meanwhile. */
  #blocked = 0;
  /** Operator restores arriving through the log. */
  #assembler = new RestoreAssembler();
  /** A restore completed in the batch being applied: it runs before the rest of the batch. */
  #completed: LogRestoreTask | undefined;
  /** The FSM threw: nothing more is applied. */
  #failedApply = false;
  #appliedIndex = 0;
  #appliedConfiguration: { index: number; configuration: Configuration } = {
    index: 0,
    configuration: { servers: [] },
  };

  /** A runner for `fsm`. */
  constructor(
    fsm: FSM<R>,
    hooks: FsmRunnerHooks,
    clock: Clock,
    applySeconds: HistogramRecorder,
    log: Logger,
  ) {
    this.#log = log;
    this.#fsm = fsm;
    this.#hooks = hooks;
    this.#clock = clock;
    this.#applySeconds = applySeconds;
  }

  /** Index of the last entry the FSM holds. */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** Latest configuration the FSM has seen, and its index. */
  get appliedConfiguration(): { index: number; configuration: Configuration } {
    return this.#appliedConfiguration;
  }

  /** The FSM was restored outside the queue (at start): it holds `meta`. */
  startFrom(index: number, meta: SnapshotMeta | undefined): void {
    this.#appliedIndex = index;
    if (meta) {
      this.#appliedConfiguration = {
        index: meta.configurationIndex,
        configuration: meta.configuration,
      };
    }
  }

  /** Queue committed entries (in log order, after everything queued before). */
  enqueue(entries: Entry[]): void {
    if (entries.length > 0) this.#queue.push({ kind: "apply", entries });
  }

  /**
   * Queue a restore of the FSM from snapshot `meta`. Queued entries it
   * covers are dropped: the snapshot replaces them. Resolves once the FSM
   * holds it; rejects (and the node fails) when the restore fails.
   */
  enqueueRestore(meta: SnapshotMeta, restore: SnapshotRestore): Promise<void> {
    for (const task of this.#queue) {
      if (task.kind === "apply") task.entries = task.entries.filter((e) => e.index > meta.index);
    }
    const done = deferred<void>();
    // Nobody may be left with an unhandled rejection: the node fails anyway.
    done.promise.catch(() => {});
    this.#queue.push({ kind: "restore", meta, ...restore, done });
    return done.promise;
  }

  /** Whether a restore is queued or running. */
  get restoring(): boolean {
    return this.#queue.some((t) => t.kind !== "apply") || this.#blocked > 0;
  }

  /**
   * Whether an operator's restore has begun in the log and its last entry is
   * not applied yet: no snapshot may be taken meanwhile (a node installing
   * it would miss the restore's first entries).
   */
  get assemblingRestore(): boolean {
    return this.#assembler.open;
  }

  /**
   * Run `capture` between applies: nothing is applied or restored until it
   * settles, so what it sees matches {@linkcode FsmRunner.appliedIndex}.
   */
  async capture<T>(capture: () => Promise<T> | T): Promise<T> {
    this.#blocked++;
    try {
      return await capture();
    } finally {
      this.#blocked--;
      this.drain();
    }
  }

  /** Apply what is queued, up to the next restore (which starts), unless blocked. */
  drain(): void {
    while (this.#queue.length > 0 && this.#blocked === 0) {
      const task = this.#queue.shift()!;
      if (task.kind === "apply") {
        if (!this.#apply(task.entries) && this.#failedApply) return;
      } else if (task.kind === "logRestore") {
        this.#blocked++;
        void this.#restoreFromLog(task);
      } else {
        this.#blocked++;
        void this.#restore(task);
      }
    }
    this.#hooks.drained();
  }

  async #restore(task: RestoreTask): Promise<void> {
    // The snapshot replaces everything before it, a restore half-way included.
    this.#assembler.reset();
    try {
      await this.#hooks.exclusive(async () => {
        const data = await task.open();
        await this.#fsm.restore(data);
        this.#appliedIndex = task.meta.index;
        this.#appliedConfiguration = {
          index: task.meta.configurationIndex,
          configuration: task.meta.configuration,
        };
      });
    } catch (e) {
      this.#blocked--;
      this.#hooks.fail(e as Error, task.during);
      task.done.reject(e);
      return;
    }
    this.#blocked--;
    task.restored();
    task.done.resolve();
    this.drain();
  }

  async #restoreFromLog(task: LogRestoreTask): Promise<void> {
    try {
      await this.#hooks.exclusive(async () => {
        await this.#fsm.restore((async function* () {
          yield* task.pieces;
        })());
        this.#appliedIndex = task.index;
      });
    } catch (e) {
      this.#blocked--;
      this.#hooks.fail(e as Error, "restoring the FSM from an operator's restore");
      return;
    }
    this.#blocked--;
    this.#hooks.settle(task.index, task.term, undefined);
    this.drain();
  }

  /**
   * Apply `entries` in batches; false when the FSM threw (the node fails) or
   * when an operator's restore completed (it goes first in the queue, the
   * entries after it behind it).
   */
  #apply(entries: Entry[]): boolean {
    if (entries.length === 0) return true;
    const start = this.#clock.now();
    let stoppedAt: number;
    try {
      stoppedAt = this.#fsm.applyBatch ? this.#applyBatches(entries) : this.#applyEach(entries);
    } catch (e) {
      this.#log.debug("the FSM threw while applying: {error}", { error: String(e) });
      this.#failedApply = true;
      this.#hooks.fail(e as Error, "applying to the FSM");
      return false;
    }
    this.#applySeconds.observe((this.#clock.now() - start) / 1000);
    const completed = this.#completed;
    if (completed === undefined) return true;
    this.#completed = undefined;
    this.#queue.unshift(completed, { kind: "apply", entries: entries.slice(stoppedAt + 1) });
    return false;
  }

  /**
   * Whether internal entry `e` completes an operator's restore (then it is
   * not applied here: the restore runs first); any other entry interrupts a
   * restore half-way.
   */
  #completesRestore(e: Entry): boolean {
    if (e.type === EntryType.Normal) {
      if (this.#assembler.open) this.#assembler.reset();
      return false;
    }
    const pieces = this.#assembler.offer(e);
    if (pieces === undefined) return false;
    this.#completed = { kind: "logRestore", index: e.index, term: e.term, pieces };
    return true;
  }

  /**
   * One `apply` per entry, settled as it goes: nothing allocated per entry.
   * Returns where it stopped (the entry completing a restore), or the length.
   */
  #applyEach(entries: Entry[]): number {
    const fsm = this.#fsm;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (e.index <= this.#appliedIndex) continue;
      if (this.#completesRestore(e)) return k;
      // An Entry is an FSMEntry: no copy on the hot path.
      const response = e.type === EntryType.Normal ? fsm.apply(e) : this.#applyInternal(e);
      this.#appliedIndex = e.index;
      this.#hooks.settle(e.index, e.term, response);
    }
    return entries.length;
  }

  /**
   * Runs of Normal entries go to `applyBatch` together; the others are taken
   * care of here. Returns where it stopped (the entry completing a restore),
   * or the length.
   */
  #applyBatches(entries: Entry[]): number {
    const fsm = this.#fsm as Required<FSM<R>>;
    let k = 0;
    while (k < entries.length) {
      const e = entries[k];
      if (e.index <= this.#appliedIndex) {
        k++;
        continue;
      }
      if (this.#completesRestore(e)) return k;
      if (e.type !== EntryType.Normal) {
        const response = this.#applyInternal(e);
        this.#appliedIndex = e.index;
        this.#hooks.settle(e.index, e.term, response);
        k++;
        continue;
      }
      let end = k + 1;
      while (end < entries.length && entries[end].type === EntryType.Normal) end++;
      const batch: FSMEntry[] = k === 0 && end === entries.length ? entries : entries.slice(k, end);
      const results = fsm.applyBatch(batch);
      this.#appliedIndex = entries[end - 1].index;
      for (let j = 0; j < batch.length; j++) {
        this.#hooks.settle(batch[j].index, batch[j].term, results[j]);
      }
      k = end;
    }
    return entries.length;
  }

  /** A noop, configuration or (not last) restore entry: the FSM never sees it. */
  #applyInternal(e: Entry): undefined {
    if (e.type === EntryType.Configuration) {
      this.#appliedConfiguration = { index: e.index, configuration: decodeConfiguration(e.data) };
    }
    return undefined;
  }
}
