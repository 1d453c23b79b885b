/**
 * What the core needs to know of a stored log to start, without holding it:
 * its bounds, its term runs, its configuration entries, and only its newest
 * entries. A driver reads the log store in batches and feeds them to a
 * {@linkcode StoredLogBuilder}.
 *
 * @module
 */

import { decodeConfiguration } from "./membership.ts";
import { entryBytes } from "./log.ts";
import type { TermRun } from "./term_index.ts";
import { type Configuration, type Entry, EntryType } from "./types.ts";

/**
 * A stored log, summarized.
 *
 * @example
 * ```ts
 * import type { StoredLog } from "./stored_log.ts";
 * const empty: StoredLog = { firstIndex: 0, lastIndex: 0, terms: [], configurations: [], tail: [] };
 * ```
 */
export interface StoredLog {
  /** Index of the first stored entry (0 when the log is empty). */
  firstIndex: number;
  /** Index of the last stored entry (0 when the log is empty). */
  lastIndex: number;
  /** Term runs covering `firstIndex..lastIndex`, oldest first. */
  terms: TermRun[];
  /** Every configuration entry of the log, oldest first. */
  configurations: Array<{ index: number; configuration: Configuration }>;
  /** The newest entries, contiguous and ending at `lastIndex` (possibly none). */
  tail: Entry[];
}

/**
 * Builds a {@linkcode StoredLog} from the entries of a log store, read in
 * contiguous batches, keeping only the newest `tailBytes` of entries
 * (counted by {@linkcode entryBytes}).
 *
 * @example
 * ```ts
 * import { StoredLogBuilder } from "./stored_log.ts";
 * import { EntryType } from "./types.ts";
 * const data = new Uint8Array(1000);
 * const b = new StoredLogBuilder(1500);
 * b.add([1, 2, 3].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
 * b.add([{ index: 4, term: 2, type: EntryType.Normal, data }]);
 * const log = b.finish();
 * console.log(log.lastIndex, log.terms, log.tail.map((e) => e.index)); // 4 [ { first: 1, term: 1 }, { first: 4, term: 2 } ] [ 4 ]
 * ```
 */
export class StoredLogBuilder {
  #tailBytes: number;
  #first = 0;
  #last = 0;
  #terms: TermRun[] = [];
  #configurations: Array<{ index: number; configuration: Configuration }> = [];
  #tail: Entry[] = [];
  #tailHead = 0;
  #bytes = 0;

  /** A builder keeping the newest `tailBytes` of entries. */
  constructor(tailBytes: number) {
    this.#tailBytes = tailBytes;
  }

  /** Index of the last entry added (0 before any). */
  get lastIndex(): number {
    return this.#last;
  }

  /** Add the next entries of the log (contiguous with those added before). */
  add(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (this.#last !== 0 && e.index !== this.#last + 1) {
        throw new RangeError(
          `stored log: expected entry ${
            this.#last + 1
          } next, got ${e.index} (the log store returned a gap)`,
        );
      }
      if (this.#first === 0) this.#first = e.index;
      this.#last = e.index;
      const run = this.#terms[this.#terms.length - 1];
      if (run === undefined || run.term !== e.term) {
        if (run !== undefined && e.term < run.term) {
          throw new RangeError(
            `stored log: entry ${e.index} has term ${e.term} after term ${run.term} (terms never decrease)`,
          );
        }
        this.#terms.push({ first: e.index, term: e.term });
      }
      if (e.type === EntryType.Configuration) {
        this.#configurations.push({ index: e.index, configuration: decodeConfiguration(e.data) });
      }
      this.#tail.push(e);
      this.#bytes += entryBytes(e);
      while (this.#bytes > this.#tailBytes && this.#tailHead < this.#tail.length) {
        this.#bytes -= entryBytes(this.#tail[this.#tailHead]);
        this.#tailHead++;
      }
      if (this.#tailHead > 1024 && this.#tailHead * 2 > this.#tail.length) {
        this.#tail = this.#tail.slice(this.#tailHead);
        this.#tailHead = 0;
      }
    }
  }

  /** The summary of everything added. */
  finish(): StoredLog {
    return {
      firstIndex: this.#first,
      lastIndex: this.#last,
      terms: this.#terms.slice(),
      configurations: this.#configurations.slice(),
      tail: this.#tail.slice(this.#tailHead),
    };
  }
}
