/**
 * The core's view of the replicated log: the entries since the last
 * compaction point, the commit index, and what has been handed out for
 * persistence and application. Pure bookkeeping, no I/O.
 *
 * @module
 */

import type { Entry } from "./types.ts";

/**
 * In-memory log of the pure core.
 *
 * Entries `offset .. lastIndex()` are held; the entry before `offset` is
 * known only by its term (`prevTerm`), which is what a compaction or an
 * installed snapshot leaves behind.
 *
 * @example
 * ```ts
 * import { RaftLog } from "./log.ts";
 * import { EntryType } from "./types.ts";
 * const log = new RaftLog(0, 0);
 * log.append([{ index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array() }]);
 * console.log(log.lastIndex(), log.term(1)); // 1 1
 * ```
 */
export class RaftLog {
  /** Index of `entries[0]`. */
  offset: number;
  /** Term of the entry at `offset - 1` (the compaction point). */
  prevTerm: number;
  /** Entries from `offset` on. */
  entries: Entry[] = [];
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed out for application. */
  applied: number;
  /** Highest index known durable on local storage. */
  stableIndex: number;
  /** First index not yet handed out for persistence. */
  unstableFrom: number;

  /** Creates an empty log whose compaction point is (`prevIndex`, `prevTerm`). */
  constructor(prevIndex: number, prevTerm: number) {
    this.offset = prevIndex + 1;
    this.prevTerm = prevTerm;
    this.committed = prevIndex;
    this.applied = prevIndex;
    this.stableIndex = prevIndex;
    this.unstableFrom = prevIndex + 1;
  }

  /** Index of the compaction point (0 for a log that never compacted). */
  prevIndex(): number {
    return this.offset - 1;
  }

  /** Index of the last entry (or of the compaction point when empty). */
  lastIndex(): number {
    return this.offset + this.entries.length - 1;
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.prevTerm : this.entries[n - 1].term;
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.offset - 1) return this.prevTerm;
    if (index < this.offset || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offset].term;
  }

  /** The entry at `index`, if held. */
  entry(index: number): Entry | undefined {
    if (index < this.offset) return undefined;
    return this.entries[index - this.offset];
  }

  /** Whether the entry at `index` has term `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft's "at least as up-to-date" rule (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Append entries whose first index is at most `lastIndex() + 1`, dropping
   * any existing entries from that index on (a conflicting suffix).
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first > this.lastIndex() + 1) {
      throw new RangeError(`append at ${first} leaves a gap after last index ${this.lastIndex()}`);
    }
    if (first <= this.committed) {
      throw new RangeError(`append at ${first} would overwrite committed index ${this.committed}`);
    }
    if (first <= this.lastIndex()) {
      this.entries.length = first - this.offset;
      if (this.stableIndex >= first) this.stableIndex = first - 1;
    }
    if (first < this.unstableFrom) this.unstableFrom = first;
    for (const e of entries) this.entries.push(e);
  }

  /**
   * The first index among `entries` whose term conflicts with the log or
   * which is new; 0 when every entry is already present.
   */
  findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * A hint for a rejected append at (`index`, `term`): the largest index
   * `<= index` whose term is `<= term`, so the leader can skip a whole term
   * of mismatching entries at once (etcd's findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    while (i >= this.offset) {
      const t = this.entries[i - this.offset].term;
      if (t <= term) return { index: i, term: t };
      i--;
    }
    return { index: this.offset - 1, term: this.prevTerm };
  }

  /** Entries `lo .. hi-1`, at most `maxEntries` and about `maxBytes` (at least one). */
  slice(lo: number, hi: number, maxEntries: number, maxBytes: number): Entry[] {
    if (lo < this.offset) throw new RangeError(`slice from ${lo} below log offset ${this.offset}`);
    const end = Math.min(hi, this.lastIndex() + 1, lo + maxEntries);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < end; i++) {
      const e = this.entries[i - this.offset];
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Raise the commit index (never lowers it). */
  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) {
      throw new RangeError(`commit ${index} beyond last index ${this.lastIndex()}`);
    }
    this.committed = index;
    return true;
  }

  /** Entries not yet handed out for persistence; marks them handed out. */
  takeUnstable(): Entry[] {
    const from = this.unstableFrom;
    const last = this.lastIndex();
    if (from > last) return [];
    this.unstableFrom = last + 1;
    return this.entries.slice(from - this.offset);
  }

  /** Whether entries await persistence. */
  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** Storage confirmed everything up to (`index`, `term`) durable. */
  stableTo(index: number, term: number): void {
    if (index > this.stableIndex && index < this.unstableFrom && this.matchTerm(index, term)) {
      this.stableIndex = index;
    }
  }

  /** Committed entries not yet handed out for application, at most `max`; marks them handed out. */
  takeCommitted(max: number): Entry[] {
    const from = this.applied + 1;
    const to = Math.min(this.committed, from + max - 1);
    if (to < from) return [];
    this.applied = to;
    return this.entries.slice(from - this.offset, to - this.offset + 1);
  }

  /** Whether committed entries await application. */
  hasCommitted(): boolean {
    return this.committed > this.applied;
  }

  /**
   * Forget entries up to `index` (they are in a snapshot and no longer
   * needed in memory). Never drops entries not yet applied or persisted.
   */
  compact(index: number): void {
    const limit = Math.min(index, this.applied, this.stableIndex, this.lastIndex());
    if (limit < this.offset) return;
    this.prevTerm = this.term(limit)!;
    this.entries = this.entries.slice(limit + 1 - this.offset);
    this.offset = limit + 1;
  }

  /** Replace the whole log by a snapshot's compaction point. */
  restore(index: number, term: number): void {
    this.entries = [];
    this.offset = index + 1;
    this.prevTerm = term;
    this.committed = index;
    this.applied = index;
    this.stableIndex = index;
    this.unstableFrom = index + 1;
  }
}
