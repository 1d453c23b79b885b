/**
 * A failing disk: storeLogs rejects with StorageError and never reports
 * success; the store refuses further writes; what was acknowledged survives.
 */
import { strict as assert } from "node:assert";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { StorageError } from "../../src/errors.ts";
import { entriesFor, entryFor, sameEntry } from "./_data.ts";
import { type Faults, faultyFileSystem } from "./_fs.ts";

const SEED = 3;

for (const fault of ["write", "partialWrite", "sync"] as (keyof Faults)[]) {
  Deno.test(`faults: a failing ${fault} rejects storeLogs with StorageError`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "raftd_logfault_" });
    try {
      const faults: Faults = {};
      const { fs } = faultyFileSystem(faults);
      const log = await FileLogStore.open(dir, { fs, segmentBytes: 4096 });
      await log.storeLogs(entriesFor(SEED, 1, 20));
      faults[fault] = true;
      // Several writers queued at once: all must fail, none may resolve.
      const results = await Promise.allSettled([
        log.storeLogs(entriesFor(SEED, 21, 5)),
        log.storeLogs(entriesFor(SEED, 26, 5)),
      ]);
      for (const r of results) {
        assert.equal(r.status, "rejected");
        assert.ok(r.reason instanceof StorageError, `got ${r.reason}`);
      }
      assert.equal(await log.lastIndex(), 20, "nothing unacknowledged becomes visible");
      // Poisoned: even after the disk "recovers" the store refuses writes.
      faults[fault] = false;
      await assert.rejects(log.storeLogs(entriesFor(SEED, 21, 1)), StorageError);
      await assert.rejects(log.deleteRange(15, 20), StorageError);
      assert.ok(sameEntry(await log.getLog(20), entryFor(SEED, 20)), "reads still work");
      await log.close();

      const again = await FileLogStore.open(dir, { segmentBytes: 4096 });
      const last = await again.lastIndex();
      assert.ok(last >= 20, `acknowledged entries survive (last ${last})`);
      const all = await again.getLogs(1, last);
      all.forEach((e, k) => assert.ok(sameEntry(e, entryFor(SEED, k + 1))));
      await again.storeLogs(entriesFor(SEED, last + 1, 2));
      await again.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("faults: failing directory fsync when rolling a segment rejects storeLogs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftd_logfault_" });
  try {
    const faults: Faults = {};
    const { fs } = faultyFileSystem(faults);
    const log = await FileLogStore.open(dir, { fs, segmentBytes: 256 });
    await log.storeLogs(entriesFor(SEED, 1, 2));
    faults.syncDir = true;
    await assert.rejects(log.storeLogs(entriesFor(SEED, 3, 2)), StorageError);
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("faults: counting syncs shows one fdatasync per batch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftd_logfault_" });
  try {
    const { fs, counters } = faultyFileSystem();
    const log = await FileLogStore.open(dir, { fs });
    await log.storeLogs(entriesFor(SEED, 1, 1)); // creates the segment: header + dir syncs
    const before = counters.syncs;
    for (let i = 2; i < 52; i += 10) await log.storeLogs(entriesFor(SEED, i, 10));
    assert.equal(counters.syncs - before, 5);
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
