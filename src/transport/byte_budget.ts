/**
 * A budget of bytes shared by many holders: memory that strangers and peers
 * make a node buffer (partial frames) is bounded in total, not only per
 * connection.
 *
 * @module
 */

/**
 * Bytes reserved against one limit by many holders.
 *
 * @example
 * ```ts
 * import { ByteBudget } from "./byte_budget.ts";
 * const budget = new ByteBudget(100);
 * console.log(budget.reserve(60), budget.reserve(60), budget.used); // true false 60
 * budget.release(60);
 * console.log(budget.used); // 0
 * ```
 */
export class ByteBudget {
  /** Most bytes reserved at once. */
  readonly limit: number;
  #used = 0;

  /** Creates a budget of `limit` bytes. */
  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new RangeError(`a byte budget must be a positive integer, got ${limit}`);
    }
    this.limit = limit;
  }

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /** Reserves `n` bytes; false (and nothing reserved) when that would pass the limit. */
  reserve(n: number): boolean {
    if (this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  /** Returns `n` bytes reserved earlier. */
  release(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}
