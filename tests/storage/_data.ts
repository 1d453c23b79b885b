/**
 * Deterministic test data for the storage tests and their child processes:
 * a seeded PRNG and entries whose bytes depend only on (seed, index).
 *
 * @module
 */

import { type Entry, EntryType } from "../../src/core/types.ts";

/**
 * mulberry32: a small, fast, seeded PRNG returning floats in [0, 1).
 *
 * @example
 * ```ts
 * import { prng } from "./_data.ts";
 * const r = prng(1);
 * console.log(r() < 1); // true
 * ```
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi] from `rand`. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/**
 * The entry at `index` for `seed`: term, type and data (0..maxSize bytes)
 * all derived from (seed, index), so a reader can check any entry alone.
 */
export function entryFor(seed: number, index: number, maxSize = 300): Entry {
  const r = prng((seed * 0x9e3779b1) ^ index);
  const size = Math.floor(r() * (maxSize + 1));
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (r() * 256) | 0;
  const type = index % 17 === 0
    ? EntryType.Configuration
    : index % 5 === 0
    ? EntryType.Noop
    : EntryType.Normal;
  return { index, term: 1 + Math.floor(index / 100), type, data };
}

/** Entries `from..from+n-1` for `seed`. */
export function entriesFor(seed: number, from: number, n: number, maxSize = 300): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) out.push(entryFor(seed, from + i, maxSize));
  return out;
}

/** Entries of a fixed data size (for benchmarks). */
export function fixedEntries(from: number, n: number, size: number, term = 1): Entry[] {
  const data = new Uint8Array(size).fill(7);
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) out.push({ index: from + i, term, type: EntryType.Normal, data });
  return out;
}

/** Whether two entries are equal field by field and byte by byte. */
export function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type) return false;
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}
