/**
 * An operator's restore travels through the log: the leader appends the
 * snapshot's bytes as a run of `Restore` entries, and every node replaces its
 * state machine's state when it applies the last one. The restore is then
 * committed like any write — by a quorum, at one index, in log order — and a
 * leader that fails half way leaves a run that no node completes.
 *
 * (Installing the state on the leader and sending it to followers as an
 * InstallSnapshot, as hashicorp/raft's Restore does, lets a node take an
 * uncommitted state for committed: a leader that crashed mid-restore came
 * back with it, a follower that installed it diverged from the next leader.)
 *
 * Each entry carries a 10-byte header: version (1), flags (first, last), the
 * index of the run's first entry (the restore's id) and the entry's position
 * in the run; then a piece of the state.
 *
 * @module
 */

import { type Entry, EntryType } from "../core/types.ts";

/** Bytes before the state in each entry of a restore. */
export const RESTORE_HEADER_BYTES = 10;

const VERSION = 1;
const FIRST = 1;
const LAST = 2;

/**
 * Cut `data` into pieces of at most `size` bytes (at least one piece, empty
 * for an empty state).
 *
 * @example
 * ```ts
 * import { readPieces } from "./restore_chunks.ts";
 * async function* data() { yield new Uint8Array(5); yield new Uint8Array(4); }
 * console.log((await readPieces(data(), 4)).map((p) => p.length)); // [ 4, 4, 1 ]
 * ```
 */
export async function readPieces(
  data: AsyncIterable<Uint8Array>,
  size: number,
): Promise<Uint8Array[]> {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new RangeError(`piece size must be a positive integer, got ${size}`);
  }
  const pieces: Uint8Array[] = [];
  let current = new Uint8Array(size);
  let used = 0;
  for await (const chunk of data) {
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(`restore data must yield Uint8Array chunks, got ${typeof chunk}`);
    }
    let pos = 0;
    while (pos < chunk.length) {
      const n = Math.min(size - used, chunk.length - pos);
      current.set(chunk.subarray(pos, pos + n), used);
      used += n;
      pos += n;
      if (used === size) {
        pieces.push(current);
        current = new Uint8Array(size);
        used = 0;
      }
    }
  }
  if (used > 0 || pieces.length === 0) pieces.push(current.slice(0, used));
  return pieces;
}

/**
 * The data of the `Restore` entries carrying `pieces`, for a run whose first
 * entry goes at index `first`.
 *
 * @example
 * ```ts
 * import { encodeRestoreEntries, RESTORE_HEADER_BYTES } from "./restore_chunks.ts";
 * const data = encodeRestoreEntries(11, [new Uint8Array(3), new Uint8Array(2)]);
 * console.log(data.map((d) => d.length - RESTORE_HEADER_BYTES)); // [ 3, 2 ]
 * ```
 */
export function encodeRestoreEntries(first: number, pieces: readonly Uint8Array[]): Uint8Array[] {
  return pieces.map((piece, seq) => {
    const out = new Uint8Array(RESTORE_HEADER_BYTES + piece.length);
    const view = new DataView(out.buffer);
    view.setUint8(0, VERSION);
    view.setUint8(1, (seq === 0 ? FIRST : 0) | (seq === pieces.length - 1 ? LAST : 0));
    view.setUint32(2, first);
    view.setUint32(6, seq);
    out.set(piece, RESTORE_HEADER_BYTES);
    return out;
  });
}

interface Header {
  first: boolean;
  last: boolean;
  id: number;
  seq: number;
}

function decodeHeader(data: Uint8Array): Header | undefined {
  if (data.length < RESTORE_HEADER_BYTES) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint8(0) !== VERSION) return undefined;
  const flags = view.getUint8(1);
  return {
    first: (flags & FIRST) !== 0,
    last: (flags & LAST) !== 0,
    id: view.getUint32(2),
    seq: view.getUint32(6),
  };
}

/**
 * Follows the committed entries a node applies and puts restores together:
 * a run of `Restore` entries from its first to its last, contiguous and of
 * one term. Any other entry in between ends the run unfinished (its leader
 * is gone: the next leader's first entry comes between), as does a piece out
 * of place.
 *
 * @example
 * ```ts
 * import { EntryType } from "../core/types.ts";
 * import { encodeRestoreEntries, RestoreAssembler } from "./restore_chunks.ts";
 * const a = new RestoreAssembler();
 * const [p0, p1] = encodeRestoreEntries(5, [new Uint8Array([1]), new Uint8Array([2])]);
 * console.log(a.offer({ index: 5, term: 2, type: EntryType.Restore, data: p0 })); // undefined
 * console.log(a.open); // true
 * console.log(a.offer({ index: 6, term: 2, type: EntryType.Restore, data: p1 })?.length); // 2
 * ```
 */
export class RestoreAssembler {
  #id = 0;
  #term = 0;
  #next = 0;
  #nextIndex = 0;
  #pieces: Uint8Array[] = [];
  #open = false;

  /** Whether a restore has begun and not ended (its last entry not applied yet). */
  get open(): boolean {
    return this.#open;
  }

  /**
   * The node applies `entry`. For a `Restore` entry that completes a run,
   * returns the run's pieces (the whole state); otherwise undefined.
   */
  offer(entry: Entry): Uint8Array[] | undefined {
    if (entry.type !== EntryType.Restore) {
      this.reset();
      return undefined;
    }
    const h = decodeHeader(entry.data);
    if (h === undefined) {
      this.reset();
      return undefined;
    }
    if (h.first) {
      this.reset();
      if (h.seq !== 0 || h.id !== entry.index) return undefined;
      this.#open = true;
      this.#id = h.id;
      this.#term = entry.term;
    } else if (
      !this.#open || h.id !== this.#id || h.seq !== this.#next || entry.term !== this.#term ||
      entry.index !== this.#nextIndex
    ) {
      this.reset();
      return undefined;
    }
    this.#pieces.push(entry.data.subarray(RESTORE_HEADER_BYTES));
    this.#next = h.seq + 1;
    this.#nextIndex = entry.index + 1;
    if (!h.last) return undefined;
    const pieces = this.#pieces;
    this.reset();
    return pieces;
  }

  /** Forget a run in progress (a snapshot replaced the state, or the run was cut). */
  reset(): void {
    this.#open = false;
    this.#pieces = [];
    this.#next = 0;
    this.#nextIndex = 0;
  }
}
