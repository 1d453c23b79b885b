/**
 * The checker's view of a node's log through its stores: terms as written
 * and read back, suffixes truncated, prefixes compacted, snapshots covering.
 */

import assert from "node:assert/strict";
import { type Entry, EntryType } from "../../src/core/types.ts";
import { MemoryLogStore } from "../../src/storage/memory_log_store.ts";
import { MemorySnapshotStore } from "../../src/storage/memory_snapshot_store.ts";
import { ShadowLogStore, ShadowSnapshotStore } from "./log_shadow.ts";

const entry = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array([index]),
});

function terms(log: ShadowLogStore, from: number, to: number): Array<number | undefined> {
  return Array.from({ length: to - from + 1 }, (_, i) => log.termAt(from + i));
}

Deno.test("log shadow: appends are reported with the term before them; conflicts truncate", async () => {
  const appended: Array<[number | undefined, string]> = [];
  const log = new ShadowLogStore(
    "n1",
    new MemoryLogStore(),
    (prev, es) => appended.push([prev, es.map((e) => `${e.index}/${e.term}`).join(",")]),
  );
  await log.storeLogs([entry(1, 1), entry(2, 1), entry(3, 1)]);
  await log.deleteRange(3, 3); // a conflicting suffix
  await log.storeLogs([entry(3, 2), entry(4, 2)]);
  assert.deepEqual(appended, [[undefined, "1/1,2/1,3/1"], [1, "3/2,4/2"]]);
  assert.deepEqual(terms(log, 1, 5), [1, 1, 2, 2, undefined]);
  assert.equal(log.compactedTo, 0);
});

Deno.test("log shadow: compaction and snapshots cover the entries they replace", async () => {
  const log = new ShadowLogStore("n1", new MemoryLogStore(), () => {});
  await log.storeLogs([1, 2, 3, 4, 5, 6].map((i) => entry(i, 1)));
  await log.deleteRange(1, 3); // compaction behind a snapshot
  assert.equal(log.compactedTo, 3);
  assert.deepEqual(terms(log, 1, 6), [undefined, undefined, undefined, 1, 1, 1]);
  await log.deleteRange(4, 6); // everything: a snapshot replaces the log
  assert.equal(log.compactedTo, 6);
  assert.deepEqual(terms(log, 4, 6), [undefined, undefined, undefined]);

  const snaps = new ShadowSnapshotStore(new MemorySnapshotStore(), log);
  const sink = await snaps.create({
    index: 9,
    term: 2,
    configuration: { servers: [] },
    configurationIndex: 1,
  });
  const info = await sink.close();
  assert.equal(log.compactedTo, 6, "a snapshot only written covers nothing yet");
  await snaps.open(info.id);
  assert.equal(log.compactedTo, 9);
  assert.equal(log.termAt(9), 2);
  assert.equal(typeof snaps.remove, "function");
});

Deno.test("log shadow: a restarted node's log is learned from what it reads back", async () => {
  const inner = new MemoryLogStore();
  await inner.storeLogs([5, 6, 7].map((i) => entry(i, 4)));
  const log = new ShadowLogStore("n1", inner, () => {});
  assert.equal(log.termAt(6), undefined);
  await log.getLogs(5, 7);
  assert.deepEqual(terms(log, 5, 7), [4, 4, 4]);
  await log.deleteRange(5, 5); // compaction of the first entry read back
  assert.equal(log.compactedTo, 5);
  assert.deepEqual(terms(log, 5, 7), [undefined, 4, 4]);
});
