/**
 * The one percentile rule every benchmark reports with.
 *
 * @module
 */

/**
 * The value at quantile `q` (0..1) of ascending `sorted`: the nearest rank
 * below, clamped to the last sample.
 *
 * @example
 * ```ts
 * import { percentile } from "./_percentile.ts";
 * console.log(percentile([1, 2, 3, 4], 0.5)); // 3
 * ```
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}
