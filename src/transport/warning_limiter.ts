/**
 * Rate limiting for warnings that a stranger can trigger at will (garbage
 * connections), so an attacker cannot flood the node's log.
 *
 * @module
 */

/**
 * Lets `limit` warnings through per `windowMs`; counts the rest and reports
 * how many were suppressed when the next window opens.
 *
 * @example
 * ```ts
 * import { WarningLimiter } from "./warning_limiter.ts";
 * const limiter = new WarningLimiter(2, 1000, () => 0);
 * console.log(limiter.allow(), limiter.allow(), limiter.allow()); // true true false
 * ```
 */
export class WarningLimiter {
  #limit: number;
  #windowMs: number;
  #now: () => number;
  #windowStart = -Infinity;
  #count = 0;
  #suppressed = 0;

  /** Creates a limiter of `limit` warnings per `windowMs` on the clock `now`. */
  constructor(limit = 10, windowMs = 10_000, now: () => number = () => performance.now()) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Whether this warning may be logged. */
  allow(): boolean {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    if (this.#count < this.#limit) {
      this.#count++;
      return true;
    }
    this.#suppressed++;
    return false;
  }

  /** Warnings suppressed since the last call (reset to 0). */
  takeSuppressed(): number {
    const n = this.#suppressed;
    this.#suppressed = 0;
    return n;
  }
}
