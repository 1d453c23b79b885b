/**
 * A small seeded pseudo-random generator (mulberry32) for the simulation.
 * The simulation never calls `Math.random`: every random choice comes from a
 * `Prng` derived from the seed, so a seed replays exactly.
 *
 * @module
 */

/**
 * Mix a 32-bit seed so neighbouring seeds start from unrelated states
 * (the finalizer of MurmurHash3).
 *
 * @example
 * ```ts
 * import { mix32 } from "./prng.ts";
 * console.log(mix32(1) !== mix32(2)); // true
 * ```
 */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Seeded generator of uint32s, floats in [0, 1), integers and choices.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const a = new Prng(7);
 * const b = new Prng(7);
 * console.log(a.int(1, 6) === b.int(1, 6)); // true
 * ```
 */
export class Prng {
  #state: number;

  /** Creates a generator from `seed` (any integer). */
  constructor(seed: number) {
    this.#state = mix32((seed >>> 0) ^ 0x9e3779b9);
  }

  /** Next uint32. */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Next float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty array");
    return items[Math.floor(this.float() * items.length)];
  }

  /** An independent generator seeded from this one. */
  fork(): Prng {
    return new Prng(this.u32());
  }
}
