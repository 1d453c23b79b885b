/**
 * Reading log entries by byte budget: how many entries fit, and a read that
 * respects the budget even on a {@linkcode LogStore} that ignores it.
 *
 * @module
 */

import type { Entry } from "../core/types.ts";
import type { LogStore } from "./types.ts";

/**
 * How many of `entries[start..end]` (inclusive) fit in `maxBytes` of data,
 * counting from `start`; always at least one when the range is not empty.
 *
 * @example
 * ```ts
 * import { countWithinBytes } from "./read_budget.ts";
 * import { EntryType } from "../core/types.ts";
 * const e = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(100) };
 * console.log(countWithinBytes([e, e, e], 0, 2, 250)); // 2
 * console.log(countWithinBytes([e, e, e], 0, 2, 10)); // 1
 * ```
 */
export function countWithinBytes(
  entries: readonly Entry[],
  start: number,
  end: number,
  maxBytes: number,
): number {
  let bytes = 0;
  for (let i = start; i <= end; i++) {
    bytes += entries[i].data.byteLength;
    if (bytes > maxBytes && i > start) return i - start;
  }
  return Math.max(0, end - start + 1);
}

/**
 * Entries `from..to` of `store`, at most `maxBytes` of data (at least one
 * entry). Stores that honour `getLogs`' byte budget read no more than that;
 * for the others the result is trimmed here.
 *
 * @example
 * ```ts
 * import { getLogsWithin } from "./read_budget.ts";
 * import { MemoryLogStore } from "./memory_log_store.ts";
 * import { EntryType } from "../core/types.ts";
 * const store = new MemoryLogStore();
 * const data = new Uint8Array(100);
 * await store.storeLogs([1, 2, 3].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
 * console.log((await getLogsWithin(store, 1, 3, 150)).length); // 1
 * ```
 */
export async function getLogsWithin(
  store: LogStore,
  from: number,
  to: number,
  maxBytes: number,
): Promise<Entry[]> {
  const entries = await store.getLogs(from, to, maxBytes);
  if (entries.length === 0) return entries;
  const n = countWithinBytes(entries, 0, entries.length - 1, maxBytes);
  return n === entries.length ? entries : entries.slice(0, n);
}
