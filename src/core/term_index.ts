/**
 * The terms of a log without its entries: runs of (first index, term). A
 * term lasts many entries, so a log of millions of entries needs a handful
 * of runs; the core answers `term(i)`, log matching and conflict hints from
 * here and reads entries from storage only to send or apply them.
 *
 * @module
 */

/**
 * One run of a {@linkcode TermIndex}: entries `first..` (up to the next run's
 * first, or the last index) all have `term`.
 */
export interface TermRun {
  /** First index of the run. */
  first: number;
  /** Term of every entry in the run. */
  term: number;
}

/**
 * Terms of the log after a compaction point (`prevIndex`, `prevTerm`) up to
 * `lastIndex`, as runs of equal terms. Terms never decrease along a log.
 *
 * @example
 * ```ts
 * import { TermIndex } from "./term_index.ts";
 * const terms = new TermIndex(0, 0);
 * terms.append(1, 1);
 * terms.append(2, 1);
 * terms.append(3, 4);
 * console.log(terms.term(2), terms.term(3), terms.runCount); // 1 4 2
 * console.log(terms.findConflictByTerm(3, 2)); // { index: 2, term: 1 }
 * ```
 */
export class TermIndex {
  #prevIndex: number;
  #prevTerm: number;
  #last: number;
  // Runs live in starts[head..] / terms[head..]; a prefix drop moves `head`
  // and the arrays are compacted when half of them is dead.
  #starts: number[] = [];
  #terms: number[] = [];
  #head = 0;

  /** An empty log whose compaction point is (`prevIndex`, `prevTerm`). */
  constructor(prevIndex: number, prevTerm: number) {
    this.#prevIndex = prevIndex;
    this.#prevTerm = prevTerm;
    this.#last = prevIndex;
  }

  /** Index of the compaction point. */
  get prevIndex(): number {
    return this.#prevIndex;
  }

  /** Term of the compaction point. */
  get prevTerm(): number {
    return this.#prevTerm;
  }

  /** Index of the last entry (the compaction point when empty). */
  get lastIndex(): number {
    return this.#last;
  }

  /** Term of the last entry (of the compaction point when empty). */
  get lastTerm(): number {
    return this.#starts.length > this.#head ? this.#terms[this.#terms.length - 1] : this.#prevTerm;
  }

  /** Number of runs held. */
  get runCount(): number {
    return this.#starts.length - this.#head;
  }

  /** The runs, oldest first (a copy). */
  runs(): TermRun[] {
    const out: TermRun[] = [];
    for (let k = this.#head; k < this.#starts.length; k++) {
      out.push({ first: this.#starts[k], term: this.#terms[k] });
    }
    return out;
  }

  /** Term at `index`: the compaction point's, an entry's, or undefined outside the log. */
  term(index: number): number | undefined {
    if (index === this.#prevIndex) return this.#prevTerm;
    if (index < this.#prevIndex || index > this.#last) return undefined;
    return this.#terms[this.#runOf(index)];
  }

  /**
   * Record the entry `index` (which must be `lastIndex + 1`) of `term` (at
   * least the last term).
   */
  append(index: number, term: number): void {
    if (index !== this.#last + 1) {
      throw new RangeError(`term index: expected index ${this.#last + 1}, got ${index}`);
    }
    const lastTerm = this.lastTerm;
    if (term < lastTerm) {
      throw new RangeError(
        `term index: terms never decrease along a log: entry ${index} has term ${term} after term ${lastTerm}`,
      );
    }
    if (term !== lastTerm || this.#starts.length === this.#head) {
      this.#starts.push(index);
      this.#terms.push(term);
    }
    this.#last = index;
  }

  /** Record entries `first..last` (`first` must be `lastIndex + 1`), all of `term`. */
  appendRange(first: number, last: number, term: number): void {
    if (last < first) return;
    this.append(first, term);
    this.#last = last;
  }

  /** Drop every entry after `index` (at least the compaction point). */
  truncateAfter(index: number): void {
    if (index < this.#prevIndex) {
      throw new RangeError(
        `term index: cannot truncate to ${index}, below the compaction point ${this.#prevIndex}`,
      );
    }
    if (index >= this.#last) return;
    while (this.#starts.length > this.#head && this.#starts[this.#starts.length - 1] > index) {
      this.#starts.pop();
      this.#terms.pop();
    }
    this.#last = index;
    if (this.#starts.length === this.#head) this.#clearRuns();
  }

  /** Make `index` (held, at most `lastIndex`) the compaction point. */
  compactTo(index: number): void {
    if (index <= this.#prevIndex) return;
    if (index > this.#last) {
      throw new RangeError(
        `term index: cannot compact to ${index}, beyond last index ${this.#last}`,
      );
    }
    const k = this.#runOf(index);
    this.#prevTerm = this.#terms[k];
    this.#prevIndex = index;
    if (index === this.#last) {
      this.#clearRuns();
      return;
    }
    // The run holding `index` keeps what follows it.
    const next = k + 1 < this.#starts.length ? this.#starts[k + 1] : Infinity;
    if (index + 1 < next) {
      this.#starts[k] = index + 1;
      this.#head = k;
    } else {
      this.#head = k + 1;
    }
    if (this.#head > 64 && this.#head * 2 > this.#starts.length) {
      this.#starts = this.#starts.slice(this.#head);
      this.#terms = this.#terms.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Forget everything: the log is now empty after (`index`, `term`) (a snapshot). */
  reset(index: number, term: number): void {
    this.#prevIndex = index;
    this.#prevTerm = term;
    this.#last = index;
    this.#clearRuns();
  }

  /**
   * The largest index `<= index` whose term is `<= term` (the compaction
   * point when none is), for fast backtracking (etcd's findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.#last);
    if (i <= this.#prevIndex) return { index: this.#prevIndex, term: this.#prevTerm };
    for (let k = this.#runOf(i); k >= this.#head; k--) {
      if (this.#terms[k] <= term) return { index: i, term: this.#terms[k] };
      i = this.#starts[k] - 1;
    }
    return { index: this.#prevIndex, term: this.#prevTerm };
  }

  #clearRuns(): void {
    this.#starts = [];
    this.#terms = [];
    this.#head = 0;
  }

  /** Position of the run holding `index` (in `prevIndex + 1 .. lastIndex`). */
  #runOf(index: number): number {
    const starts = this.#starts;
    let hi = starts.length - 1;
    if (index >= starts[hi]) return hi; // the newest run: the common case
    let lo = this.#head;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
