import { strict as assert } from "node:assert";
import { FileSnapshotStore, openLatestValid } from "../../src/storage/file_snapshot_store.ts";
import { CorruptionError, InvalidStateError, StorageError } from "../../src/errors.ts";
import type { SnapshotMeta } from "../../src/core/types.ts";
import type { SnapshotSource } from "../../src/storage/types.ts";
import { prng } from "./_data.ts";

function meta(index: number, term: number): SnapshotMeta {
  return {
    index,
    term,
    configuration: {
      servers: [
        { id: "n1", address: "127.0.0.1:7001", suffrage: "voter" },
        { id: "n2", address: "127.0.0.1:7002", suffrage: "nonvoter" },
      ],
    },
    configurationIndex: Math.max(1, index - 5),
  };
}

function bytes(seed: number, n: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

async function readAll(src: SnapshotSource): Promise<{ data: Uint8Array; chunks: number }> {
  const parts: Uint8Array[] = [];
  for await (const c of src.data) parts.push(c);
  const out = new Uint8Array(parts.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { data: out, chunks: parts.length };
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftd_snap_" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function write(store: FileSnapshotStore, m: SnapshotMeta, data: Uint8Array, chunk = 1000) {
  const sink = await store.create(m);
  for (let i = 0; i < data.length; i += chunk) await sink.write(data.subarray(i, i + chunk));
  return await sink.close();
}

Deno.test("FileSnapshotStore: write, list, stream back in chunks", async () => {
  await withDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir, { chunkBytes: 4096 });
    const data = bytes(1, 50_000);
    const info = await write(store, meta(100, 3), data);
    assert.equal(info.size, data.length);
    assert.match(info.id, /^3-100-\d+$/);
    const [listed] = await store.list();
    assert.deepEqual(listed, info);
    const src = await store.open(info.id);
    assert.deepEqual(src.info, info);
    const got = await readAll(src);
    assert.deepEqual(got.data, data);
    assert.equal(got.chunks, Math.ceil(data.length / 4096));
    assert.equal(await store.verify(info.id), true);
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/${info.id}/meta.json`));
    assert.equal(m.index, 100);
    assert.equal(m.size, 50_000);
    assert.match(m.checksum, /^[0-9a-f]{8}$/);
    // Empty state works too.
    const empty = await write(store, meta(101, 3), new Uint8Array(0));
    assert.equal((await readAll(await store.open(empty.id))).data.length, 0);
  });
});

Deno.test("FileSnapshotStore: keeps the newest `retain`, newest first", async () => {
  await withDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir, { retain: 3 });
    const ids: string[] = [];
    for (const [i, t] of [[10, 1], [20, 1], [30, 2], [40, 2], [50, 3]]) {
      ids.push((await write(store, meta(i, t), bytes(i, 100))).id);
    }
    const list = await store.list();
    assert.deepEqual(list.map((s) => s.index), [50, 40, 30]);
    const dirs = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(dirs, ids.slice(2).sort());
    // Same term and index twice: distinct ids, the later one first.
    const a = await write(store, meta(50, 3), bytes(1, 10));
    assert.notEqual(a.id, ids[4]);
    assert.equal((await store.list())[0].id, a.id);
  });
});

Deno.test("FileSnapshotStore: corrupt state is detected at the end of the stream; fall back", async () => {
  await withDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir, { chunkBytes: 1024 });
    const old = await write(store, meta(10, 1), bytes(10, 5000));
    const fresh = await write(store, meta(20, 1), bytes(20, 5000));
    const path = `${dir}/${fresh.id}/state.bin`;
    const b = Deno.readFileSync(path);
    b[4321] ^= 0x20;
    Deno.writeFileSync(path, b);
    assert.equal(await store.verify(fresh.id), false);
    assert.equal(await store.verify(old.id), true);
    await assert.rejects(readAll(await store.open(fresh.id)), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.ok(e.file?.endsWith("state.bin"));
      return true;
    });
    const src = await openLatestValid(store);
    assert.equal(src?.info.id, old.id);
    assert.deepEqual((await readAll(src as SnapshotSource)).data, bytes(10, 5000));
    // Wrong size: refused at open.
    Deno.writeFileSync(path, b.subarray(0, 100));
    await assert.rejects(store.open(fresh.id), CorruptionError);
    // The driver may remove a damaged snapshot.
    await store.remove(fresh.id);
    assert.deepEqual((await store.list()).map((s) => s.id), [old.id]);
  });
});

Deno.test("FileSnapshotStore: unreadable meta.json is skipped by list and corrupt for open", async () => {
  await withDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    const a = await write(store, meta(10, 1), bytes(1, 10));
    const b = await write(store, meta(20, 1), bytes(2, 10));
    const metaPath = `${dir}/${b.id}/meta.json`;
    const text = Deno.readTextFileSync(metaPath);
    // A plausible edit that JSON accepts: only the meta checksum catches it.
    Deno.writeTextFileSync(metaPath, text.replace('"index": 20', '"index": 21'));
    assert.deepEqual((await store.list()).map((s) => s.id), [a.id]);
    await assert.rejects(store.open(b.id), CorruptionError);
    Deno.writeTextFileSync(metaPath, "{not json");
    assert.deepEqual((await store.list()).map((s) => s.id), [a.id]);
    Deno.removeSync(metaPath);
    assert.deepEqual((await store.list()).map((s) => s.id), [a.id]);
    await assert.rejects(store.open("1-2-3"), StorageError);
    await assert.rejects(store.open("../etc"), RangeError);
  });
});

Deno.test("FileSnapshotStore: cancel and crashes leave no visible snapshot; tmp dirs removed on open", async () => {
  await withDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    const sink = await store.create(meta(10, 1));
    await sink.write(bytes(1, 100));
    assert.ok(Deno.statSync(`${dir}/${sink.id}.tmp`).isDirectory);
    assert.deepEqual(await store.list(), []);
    await sink.cancel();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    await assert.rejects(sink.write(bytes(1, 1)), InvalidStateError);

    // A writer that "crashed": its tmp dir is left behind.
    const crashed = await store.create(meta(11, 1));
    await crashed.write(bytes(2, 100));
    const again = await FileSnapshotStore.open(dir);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    assert.deepEqual(await again.list(), []);
    await crashed.cancel();
  });
});

Deno.test("FileSnapshotStore: writes that are not awaited land in order", async () => {
  await withDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    const sink = await store.create(meta(5, 1));
    const data = bytes(9, 10_000);
    const ps = [];
    for (let i = 0; i < data.length; i += 100) ps.push(sink.write(data.subarray(i, i + 100)));
    await Promise.all(ps);
    const info = await sink.close();
    assert.deepEqual((await readAll(await store.open(info.id))).data, data);
    await assert.rejects(sink.close(), InvalidStateError);
  });
});
