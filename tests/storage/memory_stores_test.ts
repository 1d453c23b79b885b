import { strict as assert } from "node:assert";
import { MemoryLogStore } from "../../src/storage/memory_log_store.ts";
import { MemoryStableStore } from "../../src/storage/memory_stable_store.ts";
import { MemorySnapshotStore } from "../../src/storage/memory_snapshot_store.ts";
import { InvalidStateError, StorageError } from "../../src/errors.ts";
import { entriesFor, entryFor, sameEntry } from "./_data.ts";
import { getLogsWithin } from "../../src/storage/read_budget.ts";
import type { LogStore } from "../../src/storage/types.ts";
import { EntryType } from "../../src/core/types.ts";

const SEED = 5;

Deno.test("MemoryLogStore: append, read, prefix and suffix deletes", async () => {
  const log = new MemoryLogStore();
  assert.equal(await log.firstIndex(), 0);
  assert.equal(await log.lastIndex(), 0);
  for (let i = 1; i <= 3000; i += 100) await log.storeLogs(entriesFor(SEED, i, 100));
  assert.equal(await log.lastIndex(), 3000);
  assert.ok(sameEntry(await log.getLog(1234), entryFor(SEED, 1234)));
  await assert.rejects(log.storeLogs(entriesFor(SEED, 3002, 1)), RangeError);
  await assert.rejects(log.deleteRange(10, 20), RangeError);
  await log.deleteRange(0, 2500); // large prefix: compacts
  assert.equal(await log.firstIndex(), 2501);
  assert.equal(await log.getLog(2500), undefined);
  await log.deleteRange(2900, 5000);
  assert.equal(await log.lastIndex(), 2899);
  const got = await log.getLogs(2400, 2600);
  assert.equal(got.length, 100);
  got.forEach((e, k) => assert.ok(sameEntry(e, entryFor(SEED, 2501 + k))));
  await log.deleteRange(1, 10_000);
  assert.equal(await log.lastIndex(), 0);
  await log.storeLogs(entriesFor(SEED, 50, 2)); // any index when empty
  assert.equal(await log.firstIndex(), 50);
  await log.close();
});

Deno.test("MemoryStableStore: copies in and out", async () => {
  const s = new MemoryStableStore();
  assert.equal(await s.getState(), undefined);
  const hs = { term: 2, vote: "n1", commit: 3 };
  await s.setState(hs);
  hs.term = 99;
  const got = await s.getState();
  assert.deepEqual(got, { term: 2, vote: "n1", commit: 3 });
  (got as { term: number }).term = 7;
  assert.equal((await s.getState())?.term, 2);
  await s.close();
});

Deno.test("MemorySnapshotStore: retain, order, chunks, cancel", async () => {
  const store = new MemorySnapshotStore();
  const m = (index: number, term: number) => ({
    index,
    term,
    configuration: { servers: [{ id: "a", address: "x:1", suffrage: "voter" as const }] },
    configurationIndex: 1,
  });
  const ids: string[] = [];
  for (const [i, t] of [[10, 1], [30, 2], [20, 2]]) {
    const sink = await store.create(m(i, t));
    const buf = new Uint8Array([i, t]);
    await sink.write(buf);
    buf[0] = 0; // the store copied it
    await sink.write(new Uint8Array([9]));
    ids.push((await sink.close()).id);
  }
  const list = await store.list();
  assert.deepEqual(list.map((s) => s.index), [30, 20]); // retain 2, newest first
  const src = await store.open(list[0].id);
  const chunks: number[][] = [];
  for await (const c of src.data) chunks.push([...c]);
  assert.deepEqual(chunks, [[30, 2], [9]]);
  assert.equal(src.info.size, 3);
  await assert.rejects(store.open(ids[0]), StorageError); // pruned
  const sink = await store.create(m(40, 3));
  await sink.cancel();
  await assert.rejects(sink.write(new Uint8Array(1)), InvalidStateError);
  assert.equal((await store.list()).length, 2);
  assert.throws(() => new MemorySnapshotStore({ retain: 0 }), RangeError);
});

Deno.test("MemoryLogStore.getLogs honours a byte budget; getLogsWithin trims stores that ignore it", async () => {
  const store = new MemoryLogStore();
  const data = new Uint8Array(100);
  await store.storeLogs(
    [1, 2, 3, 4, 5].map((index) => ({ index, term: 1, type: EntryType.Normal, data })),
  );
  assert.deepEqual((await store.getLogs(2, 5, 250)).map((e) => e.index), [2, 3]);
  assert.deepEqual((await store.getLogs(2, 5, 0)).map((e) => e.index), [2]);
  // A LogStore written before the budget existed returns the whole range.
  const ignoring = {
    ...store,
    getLogs: (from: number, to: number) => store.getLogs(from, to),
  } as unknown as LogStore;
  assert.deepEqual((await getLogsWithin(ignoring, 1, 5, 350)).map((e) => e.index), [1, 2, 3]);
});
