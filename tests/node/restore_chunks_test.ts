/**
 * An operator's restore in the log: the state cut into pieces, a run of
 * Restore entries put back together, and a run cut short ignored.
 */

import assert from "node:assert/strict";
import { type Entry, EntryType } from "../../src/core/types.ts";
import {
  encodeRestoreEntries,
  readPieces,
  RESTORE_HEADER_BYTES,
  RestoreAssembler,
} from "../../src/node/restore_chunks.ts";

async function* stream(...chunks: number[][]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield new Uint8Array(c);
}

function run(first: number, term: number, pieces: number[][]): Entry[] {
  return encodeRestoreEntries(first, pieces.map((p) => new Uint8Array(p))).map((data, i) => ({
    index: first + i,
    term,
    type: EntryType.Restore,
    data,
  }));
}

const noop = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Noop,
  data: new Uint8Array(),
});

Deno.test("restore pieces: the state cut to size, at least one piece", async () => {
  const pieces = await readPieces(stream([1, 2, 3], [4], [5, 6, 7, 8, 9]), 4);
  assert.deepEqual(pieces.map((p) => [...p]), [[1, 2, 3, 4], [5, 6, 7, 8], [9]]);
  assert.deepEqual((await readPieces(stream(), 4)).map((p) => p.length), [0]);
  await assert.rejects(readPieces(stream(), 0), RangeError);
  await assert.rejects(
    readPieces(
      (async function* () {
        yield "text" as unknown as Uint8Array;
      })(),
      4,
    ),
    /must yield Uint8Array chunks, got string/,
  );
  const entries = encodeRestoreEntries(7, pieces);
  assert.deepEqual(entries.map((e) => e.length - RESTORE_HEADER_BYTES), [4, 4, 1]);
});

Deno.test("restore assembler: a whole run gives the state back when its last entry is applied", () => {
  const a = new RestoreAssembler();
  const entries = run(10, 3, [[1, 2], [3], [4, 5]]);
  assert.equal(a.offer(entries[0]), undefined);
  assert.equal(a.open, true);
  assert.equal(a.offer(entries[1]), undefined);
  const state = a.offer(entries[2]);
  assert.deepEqual(state?.map((p) => [...p]), [[1, 2], [3], [4, 5]]);
  assert.equal(a.open, false);
  // A run of one entry.
  assert.deepEqual(a.offer(run(20, 3, [[9]])[0])?.map((p) => [...p]), [[9]]);
});

Deno.test("restore assembler: a run cut by another entry, or broken, restores nothing", () => {
  const a = new RestoreAssembler();
  // Its leader died after two entries; the next leader's no-op comes next.
  const cut = run(10, 3, [[1], [2], [3]]);
  a.offer(cut[0]);
  a.offer(cut[1]);
  assert.equal(a.offer(noop(12, 4)), undefined);
  assert.equal(a.open, false);
  assert.equal(a.offer(cut[2]), undefined, "the rest of a cut run is ignored");
  // A piece out of place, of another term, or damaged.
  const r = run(30, 5, [[1], [2], [3]]);
  a.offer(r[0]);
  assert.equal(a.offer(r[2]), undefined);
  assert.equal(a.open, false);
  a.offer(r[0]);
  assert.equal(a.offer({ ...r[1], term: 6 }), undefined);
  assert.equal(a.open, false);
  a.offer(r[0]);
  assert.equal(a.offer({ ...r[1], data: new Uint8Array([9, 9]) }), undefined);
  assert.equal(a.open, false);
  // A first entry whose id is not its own index is not a start.
  assert.equal(a.offer({ ...run(40, 5, [[1], [2]])[0], index: 41 }), undefined);
  assert.equal(a.open, false);
  // A new run replaces an open one.
  a.offer(run(50, 5, [[1], [2]])[0]);
  const fresh = run(60, 6, [[7]]);
  assert.deepEqual(a.offer(fresh[0])?.map((p) => [...p]), [[7]]);
  a.offer(run(70, 6, [[1], [2]])[0]);
  a.reset();
  assert.equal(a.open, false);
});
