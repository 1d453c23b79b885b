import { strict as assert } from "node:assert";
import { FileStableStore } from "../../src/storage/file_stable_store.ts";
import { CorruptionError, StorageError } from "../../src/errors.ts";
import { faultyFileSystem } from "./_fs.ts";

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftd_stable_" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("FileStableStore: round trip and reopen", async () => {
  await withDir(async (dir) => {
    const s = await FileStableStore.open(dir);
    assert.equal(await s.getState(), undefined);
    await s.setState({ term: 1, vote: "", commit: 0 });
    await s.setState({ term: 2 ** 40, vote: "nœud-1", commit: 12345 });
    assert.deepEqual(await s.getState(), { term: 2 ** 40, vote: "nœud-1", commit: 12345 });
    await s.close();
    const again = await FileStableStore.open(dir);
    assert.deepEqual(await again.getState(), { term: 2 ** 40, vote: "nœud-1", commit: 12345 });
    await again.close();
    assert.ok(!Deno.readDirSync(dir).some((e) => e.name.endsWith(".tmp")));
  });
});

Deno.test("FileStableStore: concurrent updates coalesce and the newest wins", async () => {
  await withDir(async (dir) => {
    const { fs, counters } = faultyFileSystem();
    const s = await FileStableStore.open(dir, { fs });
    const ps = [];
    for (let t = 1; t <= 20; t++) ps.push(s.setState({ term: t, vote: `n${t}`, commit: t }));
    await Promise.all(ps);
    assert.deepEqual(await s.getState(), { term: 20, vote: "n20", commit: 20 });
    assert.ok(counters.writes < 20, `expected coalesced writes, got ${counters.writes}`);
    const writes = counters.writes;
    await s.setState({ term: 20, vote: "n20", commit: 20 }); // unchanged: no write
    assert.equal(counters.writes, writes);
    await s.close();
    assert.deepEqual(await (await FileStableStore.open(dir)).getState(), {
      term: 20,
      vote: "n20",
      commit: 20,
    });
  });
});

Deno.test("FileStableStore: a damaged file is a CorruptionError; a stale temp file is ignored", async () => {
  await withDir(async (dir) => {
    const s = await FileStableStore.open(dir);
    await s.setState({ term: 5, vote: "n2", commit: 9 });
    await s.close();
    Deno.writeFileSync(`${dir}/hardstate.tmp`, new Uint8Array([1, 2, 3]));
    assert.equal((await (await FileStableStore.open(dir)).getState())?.term, 5);
    const good = Deno.readFileSync(`${dir}/hardstate`);
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= 0x10;
      Deno.writeFileSync(`${dir}/hardstate`, bad);
      await assert.rejects(FileStableStore.open(dir), CorruptionError, `flip at byte ${i}`);
    }
    Deno.writeFileSync(`${dir}/hardstate`, good.subarray(0, good.length - 1));
    await assert.rejects(FileStableStore.open(dir), CorruptionError);
    Deno.writeFileSync(`${dir}/hardstate`, new Uint8Array(0));
    await assert.rejects(FileStableStore.open(dir), CorruptionError);
  });
});

Deno.test("FileStableStore: failures reject with StorageError and keep the old state", async () => {
  await withDir(async (dir) => {
    const faults = { rename: false, sync: false };
    const { fs } = faultyFileSystem(faults);
    const s = await FileStableStore.open(dir, { fs });
    await s.setState({ term: 1, vote: "a", commit: 1 });
    faults.rename = true;
    await assert.rejects(s.setState({ term: 2, vote: "b", commit: 2 }), StorageError);
    faults.rename = false;
    faults.sync = true;
    await assert.rejects(s.setState({ term: 3, vote: "c", commit: 3 }), StorageError);
    assert.deepEqual(await s.getState(), { term: 1, vote: "a", commit: 1 });
    faults.sync = false;
    await s.setState({ term: 4, vote: "d", commit: 4 });
    await s.close();
    assert.equal((await (await FileStableStore.open(dir)).getState())?.term, 4);
  });
});

Deno.test("FileStableStore: rejects invalid states", async () => {
  await withDir(async (dir) => {
    const s = await FileStableStore.open(dir);
    await assert.rejects(s.setState({ term: -1, vote: "", commit: 0 }), RangeError);
    await assert.rejects(s.setState({ term: 1.5, vote: "", commit: 0 }), RangeError);
    await assert.rejects(s.setState({ term: 1, vote: "", commit: NaN }), RangeError);
    await s.close();
    await assert.rejects(s.setState({ term: 1, vote: "", commit: 0 }), StorageError);
  });
});
