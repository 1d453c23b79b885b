/**
 * A map from log index to a waiting operation, for keys that almost always
 * arrive in increasing order and leave from the front (proposals are
 * appended at the end of the log and applied in order). A queue of parallel
 * arrays instead of a `Map`: no hashing and no per-entry allocation.
 *
 * @module
 */

/**
 * Values by log index, in index order.
 *
 * @typeParam T The value kept per index.
 *
 * @example
 * ```ts
 * import { IndexQueue } from "./index_queue.ts";
 * const q = new IndexQueue<string>();
 * q.set(5, "a");
 * q.set(7, "b");
 * console.log(q.get(7), q.size); // "b" 2
 * q.delete(5);
 * console.log([...q]); // [ [ 7, "b" ] ]
 * ```
 */
export class IndexQueue<T> {
  #indexes: number[] = [];
  #values: Array<T | undefined> = [];
  #head = 0;
  #size = 0;

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  /** Keep `value` for `index` (replacing one kept there). */
  set(index: number, value: T): void {
    const n = this.#indexes.length;
    if (this.#head === n || index > this.#indexes[n - 1]) {
      if (this.#head > 1024 && this.#head * 2 > n) this.#compact();
      this.#indexes.push(index);
      this.#values.push(value);
      this.#size++;
      return;
    }
    const at = this.#find(index);
    if (at < this.#indexes.length && this.#indexes[at] === index) {
      if (this.#values[at] === undefined) this.#size++;
      this.#values[at] = value;
      return;
    }
    // Out of order (rare): insert in place.
    this.#indexes.splice(at, 0, index);
    this.#values.splice(at, 0, value);
    this.#size++;
  }

  /** The value kept for `index`, if any. */
  get(index: number): T | undefined {
    if (this.#head < this.#indexes.length && this.#indexes[this.#head] === index) {
      return this.#values[this.#head];
    }
    const at = this.#find(index);
    return this.#indexes[at] === index ? this.#values[at] : undefined;
  }

  /** Forget the value kept for `index`. */
  delete(index: number): void {
    const at = this.#indexes[this.#head] === index ? this.#head : this.#find(index);
    if (at >= this.#indexes.length || this.#indexes[at] !== index) return;
    if (this.#values[at] === undefined) return;
    this.#values[at] = undefined;
    this.#size--;
    // Forgotten slots at either end go at once; those in the middle wait.
    while (this.#head < this.#indexes.length && this.#values[this.#head] === undefined) {
      this.#head++;
    }
    while (this.#indexes.length > this.#head && this.#values.at(-1) === undefined) {
      this.#indexes.pop();
      this.#values.pop();
    }
    if (this.#head === this.#indexes.length) this.clear();
  }

  /** Forget everything. */
  clear(): void {
    this.#indexes = [];
    this.#values = [];
    this.#head = 0;
    this.#size = 0;
  }

  /** Index and value pairs in index order; deleting the current one while iterating is fine. */
  *[Symbol.iterator](): IterableIterator<[number, T]> {
    for (let k = this.#head; k < this.#indexes.length; k++) {
      const v = this.#values[k];
      if (v !== undefined) yield [this.#indexes[k], v];
    }
  }

  /** Values in index order. */
  *values(): IterableIterator<T> {
    for (const [, v] of this) yield v;
  }

  /** Position of `index`, or where it would go. */
  #find(index: number): number {
    let lo = this.#head;
    let hi = this.#indexes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#indexes[mid] < index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #compact(): void {
    this.#indexes = this.#indexes.slice(this.#head);
    this.#values = this.#values.slice(this.#head);
    this.#head = 0;
  }
}
