/**
 * Small metric primitives used by {@linkcode Raft.stats}: a cumulative
 * histogram with fixed buckets, cheap enough for the hot path.
 *
 * @module
 */

/** Default latency buckets, in seconds (100 µs .. 10 s). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** A snapshot of a histogram, shaped like Prometheus' (cumulative counts per upper bound). */
export interface Histogram {
  /** Observations. */
  count: number;
  /** Sum of observed values (seconds). */
  sum: number;
  /** Upper bounds of the buckets (seconds); +Inf is implied by `count`. */
  buckets: number[];
  /** Cumulative observations at or below each bound. */
  counts: number[];
}

/**
 * A fixed-bucket histogram.
 *
 * @example
 * ```ts
 * import { HistogramRecorder } from "./metrics.ts";
 * const h = new HistogramRecorder();
 * h.observe(0.0003);
 * console.log(h.snapshot().count); // 1
 * ```
 */
export class HistogramRecorder {
  #bounds: readonly number[];
  #counts: Float64Array;
  #count = 0;
  #sum = 0;

  /** Creates a histogram over `bounds` (ascending, seconds). */
  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length);
  }

  /** Record one value in seconds. */
  observe(seconds: number): void {
    this.#count++;
    this.#sum += seconds;
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]) {
        this.#counts[i]++;
        return;
      }
    }
  }

  /** A copy with cumulative bucket counts. */
  snapshot(): Histogram {
    const counts: number[] = [];
    let running = 0;
    for (const c of this.#counts) {
      running += c;
      counts.push(running);
    }
    return { count: this.#count, sum: this.#sum, buckets: [...this.#bounds], counts };
  }

  /** Approximate quantile `q` in [0, 1] from the buckets (upper bound of the bucket holding it). */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const target = q * this.#count;
    let running = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      running += this.#counts[i];
      if (running >= target) return this.#bounds[i];
    }
    return Infinity;
  }
}
