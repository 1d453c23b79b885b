import { strict as assert } from "node:assert";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { type Entry, EntryType } from "../../src/core/types.ts";
import { entriesFor, entryFor, sameEntry } from "./_data.ts";

const SEED = 7;

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftd_log_" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function segFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".seg")).sort();
}

async function assertRange(log: FileLogStore, from: number, to: number): Promise<void> {
  assert.equal(await log.firstIndex(), from);
  assert.equal(await log.lastIndex(), to);
  const all = await log.getLogs(from, to);
  assert.equal(all.length, to - from + 1);
  for (let i = from; i <= to; i++) {
    const want = entryFor(SEED, i);
    assert.ok(sameEntry(all[i - from], want), `getLogs: entry ${i} differs`);
    assert.ok(sameEntry(await log.getLog(i), want), `getLog: entry ${i} differs`);
  }
  assert.equal(await log.getLog(from - 1), undefined);
  assert.equal(await log.getLog(to + 1), undefined);
}

async function append(log: FileLogStore, from: number, to: number, batch: number): Promise<void> {
  for (let i = from; i <= to; i += batch) {
    await log.storeLogs(entriesFor(SEED, i, Math.min(batch, to - i + 1)));
  }
}

Deno.test("FileLogStore: empty log", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir);
    assert.equal(await log.firstIndex(), 0);
    assert.equal(await log.lastIndex(), 0);
    assert.equal(await log.getLog(1), undefined);
    assert.deepEqual(await log.getLogs(1, 10), []);
    await log.deleteRange(1, 10);
    await log.storeLogs([]);
    await log.close();
    assert.deepEqual(segFiles(dir), []);
  });
});

Deno.test("FileLogStore: round trip across segment boundaries, cache and disk", async () => {
  for (const cacheEntries of [0, 16, 4096]) {
    await withDir(async (dir) => {
      const log = await FileLogStore.open(dir, { segmentBytes: 2048, cacheEntries });
      await append(log, 1, 300, 7);
      assert.ok(segFiles(dir).length > 10, `expected many segments, got ${segFiles(dir).length}`);
      await assertRange(log, 1, 300);
      // Ranges that straddle segments and the cache boundary.
      for (const [lo, hi] of [[1, 1], [5, 250], [280, 300], [250, 299], [0, 1000]]) {
        const got = await log.getLogs(lo, hi);
        const a = Math.max(lo, 1);
        const b = Math.min(hi, 300);
        assert.equal(got.length, b - a + 1);
        got.forEach((e, k) => assert.ok(sameEntry(e, entryFor(SEED, a + k))));
      }
      await log.close();
      const again = await FileLogStore.open(dir, { segmentBytes: 2048, cacheEntries });
      await assertRange(again, 1, 300);
      await append(again, 301, 400, 13);
      await assertRange(again, 1, 400);
      await again.close();
    });
  }
});

Deno.test("FileLogStore: getLogs with a byte budget reads only what fits (at least one entry)", async () => {
  for (const cacheEntries of [0, 64]) {
    await withDir(async (dir) => {
      const log = await FileLogStore.open(dir, { segmentBytes: 2048, cacheEntries });
      await append(log, 1, 300, 9);
      const readsBefore = log.stats.diskReads;
      for (const [lo, hi, budget] of [[1, 300, 500], [40, 260, 1], [200, 300, 10_000], [5, 5, 0]]) {
        const got = await log.getLogs(lo, hi, budget);
        assert.ok(got.length >= 1, "always at least one entry");
        got.forEach((e, k) => assert.ok(sameEntry(e, entryFor(SEED, lo + k))));
        const bytes = got.reduce((n, e) => n + e.data.length, 0);
        assert.ok(
          got.length === 1 || bytes <= budget,
          `${bytes} bytes read for a budget of ${budget}`,
        );
        // The next entry would not have fit.
        if (lo + got.length <= hi) {
          assert.ok(bytes + entryFor(SEED, lo + got.length).data.length > budget);
        }
      }
      if (cacheEntries === 0) assert.ok(log.stats.diskReads > readsBefore);
      await log.close();
    });
  }
});

Deno.test("FileLogStore: the first batch may start at any index", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 4096 });
    await log.storeLogs(entriesFor(SEED, 1000, 10));
    assert.equal(await log.firstIndex(), 1000);
    assert.equal(await log.lastIndex(), 1009);
    await log.close();
    const again = await FileLogStore.open(dir);
    await assertRange(again, 1000, 1009);
    await again.close();
  });
});

Deno.test("FileLogStore: rejects batches that do not follow the log", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir);
    await log.storeLogs(entriesFor(SEED, 1, 5));
    await assert.rejects(log.storeLogs(entriesFor(SEED, 7, 2)), RangeError);
    await assert.rejects(log.storeLogs(entriesFor(SEED, 5, 2)), RangeError);
    const gap = [entryFor(SEED, 6), entryFor(SEED, 8)];
    await assert.rejects(log.storeLogs(gap), RangeError);
    await assert.rejects(log.storeLogs([{ ...entryFor(SEED, 6), index: 0 }]), RangeError);
    // The store is still usable.
    await log.storeLogs(entriesFor(SEED, 6, 2));
    await assertRange(log, 1, 7);
    await assert.rejects(log.deleteRange(3, 4), RangeError); // middle of the log
    await log.close();
  });
});

Deno.test("FileLogStore: concurrent storeLogs are serialised and merged (group commit)", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 64 * 1024 });
    const pending: Promise<void>[] = [];
    for (let i = 1; i <= 500; i += 10) pending.push(log.storeLogs(entriesFor(SEED, i, 10)));
    // One that does not follow is rejected alone.
    const bad = assert.rejects(log.storeLogs(entriesFor(SEED, 9999, 1)), RangeError);
    await Promise.all(pending);
    await bad;
    await assertRange(log, 1, 500);
    const s = log.stats;
    assert.ok(s.writes < 50, `expected merged writes, got ${s.writes} writes for 50 batches`);
    assert.equal(s.entriesWritten, 500);
    await log.close();
    const again = await FileLogStore.open(dir);
    await assertRange(again, 1, 500);
    await again.close();
  });
});

Deno.test("FileLogStore: suffix truncation within and across segments", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 2048 });
    await append(log, 1, 200, 5);
    const before = segFiles(dir).length;
    await log.deleteRange(150, 200);
    await assertRange(log, 1, 149);
    assert.ok(segFiles(dir).length < before, "later segments are removed");
    // Conflicting entries replaced by a new term.
    const replaced: Entry[] = [];
    for (let i = 150; i <= 160; i++) {
      replaced.push({
        index: i,
        term: 99,
        type: EntryType.Normal,
        data: new Uint8Array([i & 255]),
      });
    }
    await log.storeLogs(replaced);
    assert.equal((await log.getLog(155))?.term, 99);
    await log.deleteRange(148, 1000); // cut inside a segment again
    assert.equal(await log.lastIndex(), 147);
    assert.equal(await log.getLog(148), undefined);
    await log.close();

    const again = await FileLogStore.open(dir, { segmentBytes: 2048 });
    await assertRange(again, 1, 147);
    await append(again, 148, 170, 4);
    await assertRange(again, 1, 170);
    await again.close();
  });
});

Deno.test("FileLogStore: prefix truncation removes old segment files and persists the first index", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 2048 });
    await append(log, 1, 300, 6);
    const before = segFiles(dir);
    await log.deleteRange(0, 123);
    assert.equal(await log.firstIndex(), 124);
    const after = segFiles(dir);
    assert.ok(after.length < before.length, "whole segments below the first index are deleted");
    const firstSegBase = Number(after[0].slice(0, 20));
    assert.ok(firstSegBase <= 124, `first remaining segment starts at ${firstSegBase}`);
    await assertRange(log, 124, 300);
    await log.close();

    const again = await FileLogStore.open(dir, { segmentBytes: 2048 });
    await assertRange(again, 124, 300); // logical first index survived
    await again.deleteRange(124, 124);
    await again.deleteRange(1, 200);
    await assertRange(again, 201, 300);
    await again.deleteRange(290, 300); // and a suffix
    await assertRange(again, 201, 289);
    await again.close();
    const third = await FileLogStore.open(dir, { segmentBytes: 2048 });
    await assertRange(third, 201, 289);
    await third.close();
  });
});

Deno.test("FileLogStore: deleting everything, then starting elsewhere", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 2048 });
    await append(log, 1, 100, 10);
    await log.deleteRange(1, 50);
    await log.deleteRange(0, 1000);
    assert.equal(await log.firstIndex(), 0);
    assert.equal(await log.lastIndex(), 0);
    assert.deepEqual(segFiles(dir), []);
    // After a snapshot install a follower may start below the old first index.
    await log.storeLogs(entriesFor(SEED, 20, 5));
    await assertRange(log, 20, 24);
    await log.close();
    const again = await FileLogStore.open(dir);
    await assertRange(again, 20, 24);
    await again.close();
  });
});

Deno.test("FileLogStore: a batch larger than a segment gets a segment of its own", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 256 });
    const big = entriesFor(SEED, 1, 50);
    await log.storeLogs(big);
    await log.storeLogs(entriesFor(SEED, 51, 1));
    assert.equal(segFiles(dir).length, 2);
    await assertRange(log, 1, 51);
    await log.close();
  });
});

Deno.test("FileLogStore: entries read concurrently with deletes are never wrong", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 1024, cacheEntries: 0 });
    await append(log, 1, 200, 10);
    const reads: Promise<Entry[]>[] = [];
    for (let i = 0; i < 20; i++) reads.push(log.getLogs(1 + i * 5, 200));
    const del = log.deleteRange(120, 200);
    const pre = log.deleteRange(1, 30);
    for (const [k, r] of (await Promise.all(reads)).entries()) {
      const from = 1 + k * 5;
      r.forEach((e, j) => assert.ok(sameEntry(e, entryFor(SEED, from + j))));
    }
    await del;
    await pre;
    await assertRange(log, 31, 119);
    await log.close();
  });
});

Deno.test("FileLogStore: closed store refuses calls", async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir);
    await log.storeLogs(entriesFor(SEED, 1, 3));
    await log.close();
    await log.close();
    await assert.rejects(log.storeLogs(entriesFor(SEED, 4, 1)), { name: "StorageError" });
    await assert.rejects(log.getLog(1), { name: "StorageError" });
  });
});

Deno.test("FileLogStore: rejects bad options", async () => {
  await assert.rejects(
    FileLogStore.open("/nonexistent-not-used", { segmentBytes: 10 }),
    RangeError,
  );
  await assert.rejects(
    FileLogStore.open("/nonexistent-not-used", { cacheEntries: -1 }),
    RangeError,
  );
});

Deno.test("FileLogStore: same behaviour on the node:fs implementation (Bun's)", async () => {
  const { nodeFileSystem: fs } = await import("../../src/platform/fs_node.ts");
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 2048, cacheEntries: 8, fs });
    await append(log, 1, 200, 9);
    await log.deleteRange(1, 40);
    await log.deleteRange(180, 200);
    await assertRange(log, 41, 179);
    await log.close();
    const again = await FileLogStore.open(dir, { segmentBytes: 2048, cacheEntries: 0, fs });
    await assertRange(again, 41, 179);
    await again.close();
  });
});

Deno.test({
  name: "FileLogStore: reading a log of many segments keeps a bounded number of files open",
  ignore: Deno.build.os !== "linux", // counts /proc/self/fd
}, async () => {
  await withDir(async (dir) => {
    const log = await FileLogStore.open(dir, { segmentBytes: 256, cacheEntries: 0 });
    await append(log, 1, 120, 1); // about one segment per entry
    await log.close();
    const again = await FileLogStore.open(dir, { segmentBytes: 256, cacheEntries: 0 });
    const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
    const before = fds();
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 120 }, (_, k) => again.getLog(k + 1)));
      await assertRange(again, 1, 120);
    }
    assert.ok(fds() - before <= 40, `open descriptors grew by ${fds() - before}`);
    await again.close();
  });
});
