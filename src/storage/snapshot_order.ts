/**
 * The order of snapshots: newest first.
 *
 * @module
 */

import type { SnapshotInfo } from "./types.ts";

function stamp(id: string): number {
  const m = /-(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}

/**
 * Sort comparator putting the newest snapshot first: higher term, then
 * higher index, then the later millisecond stamp at the end of the id.
 *
 * @param a A snapshot.
 * @param b Another snapshot.
 * @returns Negative when `a` is newer than `b`.
 *
 * @example
 * ```ts
 * import { compareSnapshots } from "./snapshot_order.ts";
 * const m = { configuration: { servers: [] }, configurationIndex: 0, size: 0 };
 * const list = [
 *   { ...m, id: "1-10-5", term: 1, index: 10 },
 *   { ...m, id: "2-20-6", term: 2, index: 20 },
 * ];
 * console.log(list.sort(compareSnapshots)[0].id); // "2-20-6"
 * ```
 */
export function compareSnapshots(a: SnapshotInfo, b: SnapshotInfo): number {
  return b.term - a.term || b.index - a.index || stamp(b.id) - stamp(a.id);
}
