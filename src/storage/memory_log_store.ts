/**
 * A {@linkcode LogStore} in memory: for tests, the simulation, and nodes
 * that do not need durability.
 *
 * @module
 */

import type { Entry } from "../core/types.ts";
import { countWithinBytes } from "./read_budget.ts";
import type { LogStore } from "./types.ts";

/**
 * A {@linkcode LogStore} kept in an array. It checks the same rules as the
 * file store (contiguous batches that follow the log; prefix or suffix
 * deletes only) so tests catch the same mistakes. Entry objects are copied
 * on the way in; their data is shared.
 *
 * @example
 * ```ts
 * import { MemoryLogStore } from "./memory_log_store.ts";
 * import { EntryType } from "../core/types.ts";
 * const log = new MemoryLogStore();
 * const data = new Uint8Array();
 * await log.storeLogs([{ index: 1, term: 1, type: EntryType.Noop, data }]);
 * console.log(await log.lastIndex()); // 1
 * ```
 */
export class MemoryLogStore implements LogStore {
  // entries[head + (i - first)] is entry i; the head moves on prefix deletes
  // and the array is compacted when half of it is dead.
  #entries: Entry[] = [];
  #head = 0;
  #first = 0;

  get #count(): number {
    return this.#entries.length - this.#head;
  }

  get #last(): number {
    return this.#count === 0 ? 0 : this.#first + this.#count - 1;
  }

  /**
   * Index of the first stored entry, 0 when empty.
   *
   * @example
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * console.log(await new MemoryLogStore().firstIndex()); // 0
   * ```
   */
  firstIndex(): Promise<number> {
    return Promise.resolve(this.#count === 0 ? 0 : this.#first);
  }

  /**
   * Index of the last stored entry, 0 when empty.
   *
   * @example
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const log = new MemoryLogStore();
   * const data = new Uint8Array();
   * await log.storeLogs([{ index: 5, term: 1, type: EntryType.Noop, data }]);
   * console.log(await log.lastIndex()); // 5
   * ```
   */
  lastIndex(): Promise<number> {
    return Promise.resolve(this.#last);
  }

  /**
   * The entry at `index`, or undefined.
   *
   * @example
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const log = new MemoryLogStore();
   * const data = new Uint8Array();
   * await log.storeLogs([{ index: 1, term: 3, type: EntryType.Noop, data }]);
   * console.log((await log.getLog(1))?.term, await log.getLog(2)); // 3 undefined
   * ```
   */
  getLog(index: number): Promise<Entry | undefined> {
    if (this.#count === 0 || index < this.#first || index > this.#last) {
      return Promise.resolve(undefined);
    }
    return Promise.resolve(this.#entries[this.#head + index - this.#first]);
  }

  /**
   * Entries `from..to` inclusive that are stored; with `maxBytes`, only the
   * leading ones whose data fit in it (at least one).
   *
   * @example
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const log = new MemoryLogStore();
   * const data = new Uint8Array();
   * await log.storeLogs([1, 2, 3].map((index) => ({ index, term: 1, type: EntryType.Noop, data })));
   * console.log((await log.getLogs(2, 9)).map((e) => e.index)); // [2, 3]
   * ```
   */
  getLogs(from: number, to: number, maxBytes = Infinity): Promise<Entry[]> {
    if (this.#count === 0) return Promise.resolve([]);
    const lo = Math.max(Math.ceil(from), this.#first);
    let hi = Math.min(Math.floor(to), this.#last);
    if (!(lo <= hi)) return Promise.resolve([]);
    const base = this.#head - this.#first;
    if (maxBytes !== Infinity) {
      hi = lo + countWithinBytes(this.#entries, base + lo, base + hi, maxBytes) - 1;
    }
    return Promise.resolve(this.#entries.slice(base + lo, base + hi + 1));
  }

  /**
   * Append a contiguous batch starting at `lastIndex() + 1` (any index when empty).
   *
   * @throws {RangeError} When the batch does not follow the log.
   *
   * @example
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const log = new MemoryLogStore();
   * const data = new Uint8Array();
   * await log.storeLogs([{ index: 1, term: 1, type: EntryType.Normal, data }]);
   * await log.storeLogs([{ index: 3, term: 1, type: EntryType.Normal, data }])
   *   .catch((e: RangeError) => console.log(e.message)); // expected the batch to start at index 2 …
   * ```
   */
  storeLogs(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const first = entries[0].index;
    if (!Number.isSafeInteger(first) || first < 1) {
      return Promise.reject(
        new RangeError(`storeLogs: entry indexes must be integers >= 1, got ${first}`),
      );
    }
    if (this.#count > 0 && first !== this.#last + 1) {
      return Promise.reject(
        new RangeError(
          `storeLogs: expected the batch to start at index ${
            this.#last + 1
          } (last index + 1), got ${first}`,
        ),
      );
    }
    for (let k = 0; k < entries.length; k++) {
      if (entries[k].index !== first + k) {
        return Promise.reject(
          new RangeError(
            `storeLogs: batch indexes must be contiguous: expected ${
              first + k
            } at position ${k}, got ${entries[k].index}`,
          ),
        );
      }
    }
    if (this.#count === 0) {
      this.#entries = [];
      this.#head = 0;
      this.#first = first;
    }
    for (const e of entries) {
      this.#entries.push({ index: e.index, term: e.term, type: e.type, data: e.data });
    }
    return Promise.resolve();
  }

  /**
   * Delete `min..max` inclusive: a prefix or a suffix of the log.
   *
   * @throws {RangeError} For a range strictly inside the log.
   *
   * @example Compaction removes a prefix
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const log = new MemoryLogStore();
   * const data = new Uint8Array();
   * await log.storeLogs([1, 2, 3].map((index) => ({ index, term: 1, type: EntryType.Noop, data })));
   * await log.deleteRange(1, 2);
   * console.log(await log.firstIndex(), await log.lastIndex()); // 3 3
   * ```
   */
  deleteRange(min: number, max: number): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    const lo = Math.max(Math.ceil(min), this.#first);
    const hi = Math.min(Math.floor(max), this.#last);
    if (!(lo <= hi)) return Promise.resolve();
    if (lo === this.#first && hi === this.#last) {
      this.#entries = [];
      this.#head = 0;
      this.#first = 0;
    } else if (lo === this.#first) {
      this.#head += hi + 1 - this.#first;
      this.#first = hi + 1;
      if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
        this.#entries = this.#entries.slice(this.#head);
        this.#head = 0;
      }
    } else if (hi === this.#last) {
      this.#entries.length = this.#head + (lo - this.#first);
    } else {
      return Promise.reject(
        new RangeError(
          `deleteRange: expected a prefix (from ${this.#first}) or a suffix (to ${this.#last}), got ${min}..${max}`,
        ),
      );
    }
    return Promise.resolve();
  }

  /**
   * Nothing to release; resolves at once.
   *
   * @example
   * ```ts
   * import { MemoryLogStore } from "./memory_log_store.ts";
   * await new MemoryLogStore().close();
   * ```
   */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
