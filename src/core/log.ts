/**
 * The core's view of the replicated log (after etcd's `unstable` + entry
 * cache): the terms of every entry since the last compaction point (a
 * {@linkcode TermIndex}), and the entries themselves only for a suffix of
 * the log — those not yet durable, plus a cache bounded in bytes. Older
 * entries live only in the log store; the core asks for them when it needs
 * them (`Ready.loads`). Pure bookkeeping, no I/O.
 *
 * @module
 */

import { TermIndex, type TermRun } from "./term_index.ts";
import type { Entry } from "./types.ts";

/**
 * What an entry is counted as in the cache: its data plus this much for the
 * objects around it (the entry and the data's view), so a cache of tiny
 * entries is bounded too.
 */
export const ENTRY_OVERHEAD_BYTES = 128;

/**
 * Bytes an entry is counted as in the log cache.
 *
 * @example
 * ```ts
 * import { ENTRY_OVERHEAD_BYTES, entryBytes } from "./log.ts";
 * import { EntryType } from "./types.ts";
 * const e = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(10) };
 * console.log(entryBytes(e) === 10 + ENTRY_OVERHEAD_BYTES); // true
 * ```
 */
export function entryBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/**
 * The log of the pure core.
 *
 * Terms are known for `prevIndex() .. lastIndex()`; entries are held for
 * `firstInMemory() .. lastIndex()`. That window always covers the entries not
 * yet durable; durable ones stay while the cache (`cacheBytes`) has room, and
 * (unless `keepApplied`, which a leader sets to serve its followers, or the
 * cache is unbounded) only until they are handed out for application.
 *
 * @example
 * ```ts
 * import { RaftLog } from "./log.ts";
 * import { EntryType } from "./types.ts";
 * const log = new RaftLog(0, 0, 0); // no cache: only what is not yet durable
 * log.append([{ index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array() }]);
 * console.log(log.lastIndex(), log.term(1), log.entry(1)?.index); // 1 1 1
 * log.takeUnstable();
 * log.stableTo(1, 1); // durable: the cache has no room for it
 * console.log(log.term(1), log.entry(1)); // 1 undefined
 * ```
 */
export class RaftLog {
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed out for application. */
  applied: number;
  /** Highest index known durable on local storage. */
  stableIndex: number;
  /** First index not yet handed out for persistence. */
  unstableFrom: number;

  #terms: TermIndex;
  #cacheBytes: number;
  #keepApplied = false;
  /** Entries firstInMemory..lastIndex, oldest first. */
  #window = new EntryRing();
  #memFirst: number;
  #bytes = 0;

  /**
   * Creates an empty log whose compaction point is (`prevIndex`, `prevTerm`),
   * caching at most `cacheBytes` of durable entries (see {@linkcode entryBytes}).
   */
  constructor(prevIndex: number, prevTerm: number, cacheBytes = Infinity) {
    this.#terms = new TermIndex(prevIndex, prevTerm);
    this.#cacheBytes = cacheBytes;
    this.#memFirst = prevIndex + 1;
    this.committed = prevIndex;
    this.applied = prevIndex;
    this.stableIndex = prevIndex;
    this.unstableFrom = prevIndex + 1;
  }

  /**
   * Take over what storage holds after the compaction point: the term runs
   * up to `lastIndex` and the newest entries (contiguous, ending at
   * `lastIndex`), all durable. Only on an empty log.
   */
  loadStored(runs: readonly TermRun[], lastIndex: number, tail: readonly Entry[]): void {
    const prev = this.#terms.prevIndex;
    if (this.#terms.lastIndex !== prev) {
      throw new RangeError("loadStored: the log is not empty");
    }
    for (let k = 0; k < runs.length; k++) {
      const from = Math.max(runs[k].first, prev + 1);
      const to = k + 1 < runs.length ? runs[k + 1].first - 1 : lastIndex;
      this.#terms.appendRange(from, to, runs[k].term);
    }
    if (this.#terms.lastIndex !== lastIndex) {
      throw new RangeError(
        `loadStored: the term runs end at ${this.#terms.lastIndex}, expected ${lastIndex}`,
      );
    }
    const held = tail.filter((e) => e.index > prev);
    if (held.length > 0 && held[held.length - 1].index !== lastIndex) {
      throw new RangeError(
        `loadStored: the stored entries end at ${
          held[held.length - 1].index
        }, expected ${lastIndex}`,
      );
    }
    this.#window.clear();
    for (const e of held) this.#window.push(e);
    this.#memFirst = lastIndex + 1 - held.length;
    this.#bytes = 0;
    for (const e of held) this.#bytes += entryBytes(e);
    this.stableIndex = lastIndex;
    this.unstableFrom = lastIndex + 1;
    this.evict();
  }

  /** Byte budget of the cache of durable entries. */
  get cacheBytes(): number {
    return this.#cacheBytes;
  }

  /** Whether entries already handed out for application stay cached (a leader's followers need them). */
  get keepApplied(): boolean {
    return this.#keepApplied;
  }

  set keepApplied(keep: boolean) {
    this.#keepApplied = keep;
    this.evict();
  }

  /** Index of the compaction point (0 for a log that never compacted). */
  prevIndex(): number {
    return this.#terms.prevIndex;
  }

  /** First index of the log (after the compaction point). */
  firstIndex(): number {
    return this.#terms.prevIndex + 1;
  }

  /** First index whose entry is held in memory (`lastIndex() + 1` when none is). */
  firstInMemory(): number {
    return this.#memFirst;
  }

  /** Entries held in memory. */
  get heldEntries(): number {
    return this.#window.length;
  }

  /** Bytes of the entries held in memory, as {@linkcode entryBytes} counts them. */
  get heldBytes(): number {
    return this.#bytes;
  }

  /** Term runs held for the log after the compaction point. */
  get termRuns(): number {
    return this.#terms.runCount;
  }

  /** Index of the last entry (or of the compaction point when empty). */
  lastIndex(): number {
    return this.#terms.lastIndex;
  }

  /** Term of the last entry. */
  lastTerm(): number {
    return this.#terms.lastTerm;
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    return this.#terms.term(index);
  }

  /** The entry at `index`, if held in memory. */
  entry(index: number): Entry | undefined {
    if (index < this.#memFirst || index > this.#terms.lastIndex) return undefined;
    return this.#window.at(index - this.#memFirst);
  }

  /** Whether the entry at `index` has term `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.#terms.term(index) === term;
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
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    const last = this.lastIndex();
    if (first > last + 1) {
      throw new RangeError(`append at ${first} leaves a gap after last index ${last}`);
    }
    if (first <= this.committed) {
      throw new RangeError(`append at ${first} would overwrite committed index ${this.committed}`);
    }
    if (first <= last) {
      this.#terms.truncateAfter(first - 1);
      if (first <= this.#memFirst) {
        this.#window.clear();
        this.#memFirst = first;
        this.#bytes = 0;
      } else {
        const keep = first - this.#memFirst;
        for (let k = keep; k < this.#window.length; k++) {
          this.#bytes -= entryBytes(this.#window.at(k));
        }
        this.#window.truncate(keep);
      }
      if (this.stableIndex >= first) this.stableIndex = first - 1;
    }
    if (first < this.unstableFrom) this.unstableFrom = first;
    // Indexed loops on the per-entry paths: no iterator objects.
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      this.#terms.append(e.index, e.term);
      this.#window.push(e);
      this.#bytes += entryBytes(e);
    }
    this.evict();
  }

  /**
   * The first index among `entries` whose term conflicts with the log or
   * which is new; 0 when every entry is already present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
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
    return this.#terms.findConflictByTerm(index, term);
  }

  /**
   * Entries `lo .. hi-1` held in memory, at most `maxEntries` and about
   * `maxBytes` of data (at least one).
   */
  slice(lo: number, hi: number, maxEntries: number, maxBytes: number): Entry[] {
    if (lo < this.#memFirst) {
      throw new RangeError(`slice from ${lo} below the entries held in memory (${this.#memFirst})`);
    }
    let end = Math.min(hi, this.lastIndex() + 1, lo + maxEntries);
    let bytes = 0;
    for (let i = lo; i < end; i++) {
      bytes += this.#window.at(i - this.#memFirst).data.byteLength;
      if (i > lo && bytes > maxBytes) end = i;
    }
    return this.#copy(lo, end);
  }

  /**
   * How many of `entries`, read from storage for indexes `lo..`, are this
   * log's entries: the leading run whose indexes follow on from `lo`, lie
   * after the compaction point and have the terms this log records there.
   * Entries read before a truncation or a compaction fail this check.
   */
  matchingPrefix(lo: number, entries: readonly Entry[]): number {
    let n = 0;
    while (n < entries.length) {
      const e = entries[n];
      if (e.index !== lo + n || e.index <= this.prevIndex() || this.term(e.index) !== e.term) break;
      n++;
    }
    return n;
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
    return this.#window.toArray(from - this.#memFirst);
  }

  /** Whether entries await persistence. */
  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** Storage confirmed everything up to (`index`, `term`) durable. */
  stableTo(index: number, term: number): void {
    if (index > this.stableIndex && index < this.unstableFrom && this.matchTerm(index, term)) {
      this.stableIndex = index;
      this.evict();
    }
  }

  /** Whether the next committed entry to hand out is held in memory. */
  nextCommittedInMemory(): boolean {
    return this.applied + 1 >= this.#memFirst;
  }

  /**
   * Committed entries not yet handed out for application, from memory: at
   * most `max` and `maxBytes` (as {@linkcode entryBytes} counts them; at
   * least one); marks them handed out. Empty when the next one is not held
   * (read it from storage).
   */
  takeCommitted(max: number, maxBytes = Infinity): Entry[] {
    const from = this.applied + 1;
    const to = Math.min(this.committed, from + max - 1);
    if (to < from || from < this.#memFirst) return [];
    let end = to + 1;
    let bytes = 0;
    for (let i = from; i < end; i++) {
      bytes += entryBytes(this.#window.at(i - this.#memFirst));
      if (i > from && bytes > maxBytes) end = i;
    }
    const out = this.#copy(from, end);
    this.applied = end - 1;
    this.evict();
    return out;
  }

  /** Mark committed entries up to `index` handed out (they came from storage). */
  handedOut(index: number): void {
    if (index <= this.applied) return;
    if (index > this.committed) {
      throw new RangeError(`hand out ${index} beyond commit index ${this.committed}`);
    }
    this.applied = index;
    this.evict();
  }

  /** Entries `lo .. end-1` (held in memory) as a new array. */
  #copy(lo: number, end: number): Entry[] {
    const out = new Array<Entry>(end - lo);
    for (let i = lo; i < end; i++) out[i - lo] = this.#window.at(i - this.#memFirst);
    return out;
  }

  /** Whether committed entries await application. */
  hasCommitted(): boolean {
    return this.committed > this.applied;
  }

  /**
   * Drop durable entries from memory, oldest first, while the cache is over
   * budget, and (unless `keepApplied`) those already handed out for
   * application. Entries not yet durable always stay.
   */
  evict(): void {
    const limit = Math.min(this.stableIndex, this.lastIndex());
    while (this.#memFirst <= limit) {
      const overBudget = this.#bytes > this.#cacheBytes;
      // An unbounded cache keeps everything (no reads from storage at all).
      const applied = this.#memFirst <= this.applied && this.#cacheBytes !== Infinity;
      if (!overBudget && (this.#keepApplied || !applied)) break;
      this.#bytes -= entryBytes(this.#window.shift());
      this.#memFirst++;
    }
  }

  /**
   * Make `index` the compaction point: its term is kept, everything up to it
   * forgotten. Never drops entries not yet applied or persisted.
   */
  compact(index: number): void {
    const limit = Math.min(index, this.applied, this.stableIndex, this.lastIndex());
    if (limit <= this.prevIndex()) return;
    this.#terms.compactTo(limit);
    while (this.#memFirst <= limit) {
      this.#bytes -= entryBytes(this.#window.shift());
      this.#memFirst++;
    }
    this.evict();
  }

  /** Replace the whole log by a snapshot's compaction point. */
  restore(index: number, term: number): void {
    this.#terms.reset(index, term);
    this.#window.clear();
    this.#memFirst = index + 1;
    this.#bytes = 0;
    this.committed = index;
    this.applied = index;
    this.stableIndex = index;
    this.unstableFrom = index + 1;
  }
}

/**
 * The entries held in memory: a ring that grows by doubling and shrinks when
 * mostly empty, so pushing at one end and dropping at the other allocates
 * nothing in a steady state.
 */
class EntryRing {
  #slots: Array<Entry | undefined> = new Array(MIN_RING);
  #start = 0;
  #count = 0;

  get length(): number {
    return this.#count;
  }

  /** The `k`-th entry from the oldest (`0 <= k < length`). */
  at(k: number): Entry {
    return this.#slots[(this.#start + k) & (this.#slots.length - 1)]!;
  }

  push(e: Entry): void {
    if (this.#count === this.#slots.length) this.#resize(this.#slots.length * 2);
    this.#slots[(this.#start + this.#count) & (this.#slots.length - 1)] = e;
    this.#count++;
  }

  /** Remove and return the oldest entry (the ring is not empty). */
  shift(): Entry {
    const slots = this.#slots;
    const e = slots[this.#start]!;
    slots[this.#start] = undefined;
    this.#start = (this.#start + 1) & (slots.length - 1);
    this.#count--;
    if (slots.length > SHRINK_RING_ABOVE && this.#count * 8 < slots.length) {
      this.#resize(slots.length / 2);
    }
    return e;
  }

  /** Keep the oldest `n` entries. */
  truncate(n: number): void {
    while (this.#count > n) {
      this.#count--;
      this.#slots[(this.#start + this.#count) & (this.#slots.length - 1)] = undefined;
    }
  }

  clear(): void {
    this.#slots = new Array(MIN_RING);
    this.#start = 0;
    this.#count = 0;
  }

  /** The entries from the `k`-th on, oldest first, as a new array. */
  toArray(k: number): Entry[] {
    const out = new Array<Entry>(this.#count - k);
    for (let j = 0; j < out.length; j++) out[j] = this.at(k + j);
    return out;
  }

  #resize(capacity: number): void {
    const slots = new Array<Entry | undefined>(capacity);
    for (let k = 0; k < this.#count; k++) slots[k] = this.at(k);
    this.#slots = slots;
    this.#start = 0;
  }
}

/** Ring capacities are powers of two from here. */
const MIN_RING = 16;
/** A ring this large shrinks once it is less than an eighth full. */
const SHRINK_RING_ABOVE = 1024;
